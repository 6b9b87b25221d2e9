"""The solver registry: decorator registration, lookup by name, and plugins.

Built-in solvers live in the ``solvers`` package and register themselves on import.
Third-party packages add solvers through the entry-point group ``genbench.solvers``: the
entry point may name a :class:`~genbench.core.solver.Solver` subclass (registered under the
entry point's name unless it registered itself) or a module that registers on import.
Plugins load lazily on the first lookup; a broken plugin warns and never hides the
built-ins.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import torch

    from genbench.core.solver import Solver

__all__ = [
    "ENTRY_POINT_GROUP",
    "UnknownSolverError",
    "create_solver",
    "get_solver_class",
    "list_solvers",
    "register_solver",
]

ENTRY_POINT_GROUP = "genbench.solvers"
_BUILTIN_PACKAGE = "solvers"

_registry: dict[str, type[Solver]] = {}
_plugins_loaded = False

S = TypeVar("S", bound="type[Solver]")


class UnknownSolverError(KeyError):
    """No solver is registered under the requested name."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


def register_solver(name: str) -> Callable[[S], S]:
    """Class decorator registering a :class:`~genbench.core.solver.Solver` under ``name``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"solver name must be a Python identifier, got {name!r}")

    def decorator(cls: S) -> S:
        from genbench.core.solver import Solver

        if not (isinstance(cls, type) and issubclass(cls, Solver)):
            raise TypeError(f"@register_solver({name!r}) needs a Solver subclass, got {cls!r}")
        existing = _registry.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(
                f"solver name {name!r} is already registered by "
                f"{existing.__module__}.{existing.__qualname__}"
            )
        cls.name = name
        _registry[name] = cls
        return cls

    return decorator


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    importlib.import_module(_BUILTIN_PACKAGE)
    from genbench.core.solver import Solver

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if isinstance(obj, type) and issubclass(obj, Solver) and obj not in _registry.values():
                register_solver(ep.name)(obj)
        except Exception as err:  # a broken plugin must not break the built-ins
            warnings.warn(
                f"could not load genbench solver plugin {ep.name!r} ({ep.value}): "
                f"{type(err).__name__}: {err}",
                RuntimeWarning,
                stacklevel=2,
            )


def reload_plugins() -> None:
    """Scan the entry points again (after installing a plugin in a running process)."""
    global _plugins_loaded
    _plugins_loaded = False
    _load_plugins()


def list_solvers() -> list[str]:
    """Names of every registered solver, built-in and plugin, sorted."""
    _load_plugins()
    return sorted(_registry)


def get_solver_class(name: str) -> type[Solver]:
    """The class registered under ``name``; the error lists the registered names."""
    _load_plugins()
    try:
        return _registry[name]
    except KeyError:
        raise UnknownSolverError(
            f"unknown solver {name!r}; registered solvers: {', '.join(sorted(_registry))}"
        ) from None


def create_solver(
    name: str,
    dim: int,
    config: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
) -> Solver:
    """Build the solver ``name`` for ``dim``-dimensional latents, on ``device``."""
    cls = get_solver_class(name)
    return cls(dim, config).to(device)
