"""One registry mechanism for every pluggable part: solvers, data sets and codecs.

A :class:`Registry` maps names to components. Built-ins register with the decorator
(:meth:`Registry.register`) when their modules are imported; third-party packages add
components through an entry-point group (``genbench.solvers``, ``genbench.datasets``,
``genbench.codecs``): the entry point names either a component (registered under the entry
point's name unless it registered itself) or a module that registers on import. Built-ins and
plugins load lazily, on the first lookup; a broken plugin warns and never hides the
built-ins. An unknown name raises :class:`~genbench.core.errors.UnknownNameError` listing
the registered names; a name registered twice by different objects is rejected.
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from genbench.core.errors import UnknownNameError

__all__ = ["Registry", "UnknownNameError"]

T = TypeVar("T")
# Data set names such as ``8gaussians`` are not identifiers; spaces and ``=,/`` would break
# Hydra overrides and folder names.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class Registry(Generic[T]):
    """Components of one ``kind`` by name, with entry-point plugins from ``group``.

    ``builtins``: modules imported before the first lookup (they register on import).
    ``accepts(obj)``: whether ``obj`` is a component of this kind; ``describe`` names the
    expected kind in the error. ``on_register(name, obj)`` runs after a registration.
    """

    def __init__(self, kind: str, group: str, *, builtins: Sequence[str] = (),
                 accepts: Callable[[object], bool] = lambda obj: True,
                 describe: str = "component",
                 on_register: Callable[[str, T], None] | None = None):
        self.kind, self.group, self.builtins = kind, group, tuple(builtins)
        self._accepts, self._describe, self._on_register = accepts, describe, on_register
        self._entries: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering a component under ``name``; returns it unchanged."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"{self.kind} name must be letters, digits, '_', '.' or '-', "
                             f"got {name!r}")

        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name`` (the decorator's work, as a call)."""
        if not self._accepts(obj):
            raise TypeError(f"{self.kind} {name!r} must be a {self._describe}, got {obj!r}")
        existing = self._entries.get(name)
        if existing is not None and existing is not obj:
            where = getattr(existing, "__module__", "?") + "." + getattr(
                existing, "__qualname__", type(existing).__name__)
            raise ValueError(f"{self.kind} name {name!r} is already registered by {where}")
        self._entries[name] = obj
        if self._on_register is not None:
            self._on_register(name, obj)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self.builtins:
            importlib.import_module(module)
        for ep in entry_points(group=self.group):
            try:
                obj = ep.load()
                if self._accepts(obj) and all(obj is not v for v in self._entries.values()):
                    self.add(ep.name, obj)
            except Exception as err:  # a broken plugin must not break the built-ins
                warnings.warn(f"could not load genbench {self.kind} plugin {ep.name!r} "
                              f"({ep.value}): {type(err).__name__}: {err}",
                              RuntimeWarning, stacklevel=3)

    def reload(self) -> None:
        """Scan the entry points again (after installing a plugin in a running process)."""
        self._loaded = False
        self._load()

    def names(self) -> list[str]:
        """Every registered name, built-in and plugin, sorted."""
        self._load()
        return sorted(self._entries)

    def get(self, name: str) -> T:
        """The component registered under ``name``; the error lists the registered names."""
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(f"unknown {self.kind} {name!r}; registered {self.kind}s: "
                                   f"{', '.join(sorted(self._entries))}") from None

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def snapshot(self) -> dict[str, T]:
        """A copy of the entries (tests restore it with :meth:`restore`)."""
        return dict(self._entries)

    def restore(self, entries: dict[str, T]) -> None:
        self._entries = dict(entries)
