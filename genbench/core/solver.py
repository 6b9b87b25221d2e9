"""The Solver contract every latent generator implements, and the solver registry.

A solver sees only latent vectors ``z`` of shape ``(n, dim)``. It declares its
hyper-parameters as a dataclass (``Config``, extending :class:`SolverConfig`) and implements
three methods:

- ``build()`` creates its networks from ``self.dim`` and ``self.config``, and sets
  ``self.net``: the module the shared training loop optimises (or overrides
  ``trainable_module()`` to name another one);
- ``loss(z)`` is the scalar training loss on a minibatch;
- ``_sample(n, generator)`` draws ``n`` latents and sets ``self.nfe``; sample from
  ``self.ema.module``, the moving average of the trained module, which the base class builds
  after ``build()`` and the loop updates every step.

Density solvers set ``has_density = True`` and implement ``_log_prob(z)``. The base class
trains with :meth:`Solver.fit` (the shared loop of :mod:`genbench.core.training`), checks
inputs, and round-trips state through :meth:`Solver.save` / :meth:`Solver.load`.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from genbench.core.budget import BudgetConfig, BudgetError
from genbench.core.config import validate
from genbench.core.errors import CapabilityError, DataError, DivergenceError, UnknownNameError
from genbench.core.registry import Registry
from genbench.core.regression import Regression
from genbench.core.storage import atomic_write
from genbench.core.training import TrainCallback, make_ema, train

__all__ = [
    "ENTRY_POINT_GROUP",
    "SOLVERS",
    "CapabilityError",
    "DataError",
    "DivergenceError",
    "Solver",
    "SolverConfig",
    "TrainCallback",
    "UnknownSolverError",
    "create_solver",
    "get_solver_class",
    "list_solvers",
    "register_solver",
    "reload_plugins",
]

UnknownSolverError = UnknownNameError
ENTRY_POINT_GROUP = "genbench.solvers"


@dataclass
class SolverConfig:
    """Training hyper-parameters shared by every solver (each adds its own fields)."""

    steps: int = 4000
    batch_size: int = 512
    lr: float = 2e-3
    lr_schedule: str = "cosine"  # constant | cosine
    warmup: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    hidden: int = 256
    depth: int = 3
    log_every: int = 50

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "hidden", "depth", "log_every"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be positive, got {getattr(self, key)}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(
                f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}"
            )
        if not self.lr > 0:  # checked here so a bad lr fails before any data is built
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")


class Solver(nn.Module, ABC):
    """Abstract base of every latent generator.

    Subclasses set ``Config`` and implement :meth:`build` (setting ``self.net``),
    :meth:`loss` and :meth:`_sample` (sampling from ``self.ema.module``); density solvers set
    ``has_density`` and implement :meth:`_log_prob`. The base class owns ``self.ema``.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[SolverConfig]] = SolverConfig
    has_density: ClassVar[bool] = False
    # Config keys read only when sampling or scoring (never by fit): a checkpoint can be
    # re-sampled with other values of these (``genbench-eval``) without retraining.
    sampling_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dim: int, config: SolverConfig | Mapping[str, Any] | None = None):
        super().__init__()
        if not isinstance(dim, int) or dim <= 0:
            raise DataError(f"latent dimension must be a positive int, got {dim!r}")
        self.dim = dim
        label = f"solver {self.name or type(self).__name__!r}"
        self.config = validate(self.Config, config, what=label)
        self.nfe = 0
        self.register_buffer("_fitted", torch.tensor(False), persistent=True)
        self.build()
        self.build_ema()

    # -- to implement -------------------------------------------------------------------
    @abstractmethod
    def build(self) -> None:
        """Create networks and buffers from ``self.dim`` and ``self.config``."""

    @abstractmethod
    def loss(self, z: Tensor) -> Tensor:
        """Scalar training loss on a minibatch ``z`` of shape ``(batch, dim)``."""

    @abstractmethod
    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Draw ``n`` latents; set ``self.nfe``."""

    def _log_prob(self, z: Tensor) -> Tensor:
        raise CapabilityError(f"solver {self.name!r} has no density (has_density=False)")

    def regression(self, z: Tensor) -> Regression:
        """Optional: the loss on ``z`` as a :class:`Regression` of :meth:`trainable_module`,
        its random draws made without the network, in the order :meth:`loss` makes them
        (``loss(z)`` is then ``regression(z).loss_of(net)``). A solver that implements it and
        sets ``batch_seeds`` trains several seeds as one batched model
        (:mod:`genbench.core.ensemble`)."""
        raise CapabilityError(f"solver {self.name!r} gives no regression form of its loss")

    def prepare(self, z: Tensor) -> None:
        """Called by :meth:`fit` with the checked data before training (e.g. to store moments)."""

    def minibatches(self, z: Tensor, batch: int, steps: int) -> Iterator[Tensor]:
        """The rows each training step's :meth:`loss` receives (default: ``batch`` rows of
        ``z`` drawn uniformly with replacement). An iterator with ``close()`` is closed by
        the training loop, also when a step raises."""
        from genbench.core.training import random_minibatches

        return random_minibatches(z, batch, steps)

    def trainable_module(self) -> nn.Module:
        """The module whose parameters the shared loop optimises (and averages by EMA).

        ``self.net`` by default, which :meth:`build` must then create.
        """
        net = getattr(self, "net", None)
        if not isinstance(net, nn.Module):
            raise AttributeError(
                f"{type(self).__name__}.build() must set self.net (an nn.Module), or the "
                "class must override trainable_module() to name the module it trains"
            )
        return net

    def build_ema(self) -> None:
        """Create ``self.ema``, the moving average of :meth:`trainable_module` used for
        sampling (``self.ema.module``; decay ``config.ema_decay``, 0 keeps the latest weights).

        Called by the base class after :meth:`build`; a solver that trains several modules in
        turn (``jko``) overrides it.
        """
        self.ema = make_ema(self.trainable_module(), self.config.ema_decay)

    @classmethod
    def apply_budget(cls, config: SolverConfig, budget: BudgetConfig) -> dict[str, Any]:
        """Config overrides that make this solver spend ``budget`` (:mod:`genbench.core.budget`).

        The default maps ``budget.train_steps`` onto ``steps`` (the shared loop's count) and
        knows no NFE mapping: a solver with a sampler overrides this to map ``budget.nfe``
        onto its own sampling keys (``super().apply_budget`` for the training part).
        """
        overrides: dict[str, Any] = {}
        if budget.train_steps is not None:
            overrides["steps"] = budget.train_steps
        if budget.nfe is not None:
            raise BudgetError(
                f"solver {cls.name or cls.__name__!r} declares no mapping of budget.nfe onto "
                "its keys (Solver.apply_budget); drop budget.nfe or set its sampling keys")
        return overrides

    # -- the contract -------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def fitted(self) -> bool:
        return bool(self._fitted)

    def check_data(self, z: Any, *, what: str = "z") -> Tensor:
        """Return ``z`` as a float tensor on this solver's device, or raise :class:`DataError`."""
        if not isinstance(z, Tensor):
            try:
                z = torch.as_tensor(z)
            except Exception as err:
                raise DataError(
                    f"{what} must be an array of shape (n, {self.dim}): {err}"
                ) from None
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise DataError(
                f"{what} must have shape (n, {self.dim}) for this {self.dim}-dimensional "
                f"solver, got {tuple(z.shape)}"
            )
        if z.shape[0] == 0:
            raise DataError(f"{what} is empty: expected at least one row of shape (n, {self.dim})")
        if not z.is_floating_point():
            z = z.float()
        if not bool(torch.isfinite(z).all()):
            bad = int((~torch.isfinite(z)).any(dim=1).sum())
            raise DataError(f"{what} has {bad} row(s) with NaN or infinite values")
        return z.to(device=self.device, dtype=torch.float32)

    def fit(
        self,
        z: Tensor,
        *,
        steps: int | None = None,
        callback: TrainCallback | None = None,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Train on latents ``z`` of shape ``(n, dim)``; returns training statistics."""
        z = self.check_data(z)
        self.prepare(z)
        stats = train(self, z, steps=steps or self.config.steps, callback=callback,
                      progress=progress)
        self._fitted.fill_(True)
        return stats

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` latents of shape ``(n, dim)`` (float32, on this solver's device)."""
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if generator is None:
            generator = torch.Generator(device=self.device)
            generator.seed()
        was_training = self.training
        self.eval()
        try:
            out = self._sample(n, generator)
        finally:
            self.train(was_training)
        return out.detach()

    def log_prob(self, z: Tensor) -> Tensor:
        """Log-density of latents ``z`` of shape ``(n, dim)``; shape ``(n,)``."""
        if not self.has_density:
            raise CapabilityError(
                f"solver {self.name!r} has no density; solvers with log_prob set has_density"
            )
        z = self.check_data(z)
        self.eval()
        return self._log_prob(z)

    def save(self, path: str | Path) -> None:
        """Write config and weights to ``path`` (a ``.pt`` file), atomically."""
        payload = {
            "name": self.name,
            "dim": self.dim,
            "config": dataclasses.asdict(self.config),
            "state_dict": self.state_dict(),
        }
        atomic_write(Path(path), lambda fh: torch.save(payload, fh))

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> Solver:
        """Rebuild a solver written by :meth:`save` (``Solver.load`` dispatches by name)."""
        payload = torch.load(Path(path), map_location=map_location, weights_only=True)
        target = cls if cls is not Solver else get_solver_class(payload["name"])
        solver = target(payload["dim"], payload["config"])
        solver.load_state_dict(payload["state_dict"])
        return solver.to(map_location)


def gaussian_log_prob(z: Tensor) -> Tensor:
    """Log-density of the standard normal in ``z.shape[1]`` dimensions, per row."""
    return -0.5 * (z.pow(2).sum(dim=1) + z.shape[1] * math.log(2 * math.pi))


def _name_solver(name: str, cls: type[Solver]) -> None:
    cls.name = name


# The solver registry: built-ins in the top-level ``solvers`` package, plugins in the
# entry-point group ``genbench.solvers`` (see :mod:`genbench.core.registry`).
SOLVERS: Registry[type[Solver]] = Registry(
    "solver", ENTRY_POINT_GROUP, builtins=("solvers",),
    accepts=lambda obj: isinstance(obj, type) and issubclass(obj, Solver),
    describe="Solver subclass", on_register=_name_solver)
S = TypeVar("S", bound=type[Solver])


def register_solver(name: str) -> Callable[[S], S]:
    """Class decorator registering a :class:`Solver` subclass under ``name``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"solver name must be a Python identifier, got {name!r}")
    return SOLVERS.register(name)


def list_solvers() -> list[str]:
    """Names of every registered solver, built-in and plugin, sorted."""
    return SOLVERS.names()


def get_solver_class(name: str) -> type[Solver]:
    """The class registered under ``name``; the error lists the registered names."""
    return SOLVERS.get(name)


def reload_plugins() -> None:
    """Scan the ``genbench.solvers`` entry points again (after installing a plugin)."""
    SOLVERS.reload()


def create_solver(name: str, dim: int, config: Mapping[str, Any] | None = None,
                  device: str | torch.device = "cpu") -> Solver:
    """Build the solver ``name`` for ``dim``-dimensional latents, on ``device``."""
    return get_solver_class(name)(dim, config).to(device)
