"""The Solver contract every latent generator implements.

A solver sees only latent vectors ``z`` of shape ``(n, dim)``. It declares its
hyper-parameters as a dataclass (``Config``, extending :class:`SolverConfig`), trains with
:meth:`Solver.fit` (by default the shared loop of :mod:`genbench.core.training` over the
solver's :meth:`Solver.loss`), draws with :meth:`Solver.sample`, and, where
``has_density``, evaluates :meth:`Solver.log_prob`. ``nfe`` counts network evaluations of
the last sampling call. State round-trips through :meth:`Solver.save` / :meth:`Solver.load`.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genbench.core.config import validate

__all__ = [
    "CapabilityError",
    "DataError",
    "DivergenceError",
    "Solver",
    "SolverConfig",
    "TrainCallback",
]

TrainCallback = Callable[[int, dict[str, float]], None]


class DataError(ValueError):
    """Training or evaluation data of the wrong shape, empty, or not finite."""


class CapabilityError(NotImplementedError):
    """The solver does not offer the requested capability (e.g. ``log_prob``)."""


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss; the job stops cleanly."""


@dataclass
class SolverConfig:
    """Training hyper-parameters shared by every solver (each adds its own fields)."""

    steps: int = 4000
    batch_size: int = 512
    lr: float = 2e-3
    lr_schedule: str = "cosine"
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

    Subclasses set ``Config`` and implement :meth:`build`, :meth:`loss` and
    :meth:`_sample`; density solvers set ``has_density`` and implement :meth:`_log_prob`.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[SolverConfig]] = SolverConfig
    has_density: ClassVar[bool] = False
    stochastic_sampler: ClassVar[bool] = True

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

    def prepare(self, z: Tensor) -> None:
        """Called by :meth:`fit` with the checked data before training (e.g. to store moments)."""

    def trainable_module(self) -> nn.Module:
        """The module whose parameters the shared loop optimises (and averages by EMA)."""
        return self.net

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
        from genbench.core.training import train

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
        from genbench.run.storage import atomic_torch_save

        payload = {
            "name": self.name,
            "dim": self.dim,
            "config": dataclasses.asdict(self.config),
            "state_dict": self.state_dict(),
        }
        atomic_torch_save(payload, Path(path))

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> Solver:
        """Rebuild a solver written by :meth:`save` (``Solver.load`` dispatches by name)."""
        from genbench.core.registry import get_solver_class

        payload = torch.load(Path(path), map_location=map_location, weights_only=True)
        target = cls if cls is not Solver else get_solver_class(payload["name"])
        solver = target(payload["dim"], payload["config"])
        solver.load_state_dict(payload["state_dict"])
        return solver.to(map_location)


def gaussian_log_prob(z: Tensor) -> Tensor:
    """Log-density of the standard normal in ``z.shape[1]`` dimensions, per row."""
    return -0.5 * (z.pow(2).sum(dim=1) + z.shape[1] * math.log(2 * math.pi))
