"""The sanity ladder: three trivial generators scored like solvers, as reference rows.

* ``collapse``: every sample at the training mean, plus a jitter of ``jitter`` times the
  per-coordinate training sd (so the sample has no repeated points, which some metrics
  reject). The floor of diversity: a metric that does not rank it last is blind.
* ``gaussian``: the moment-matched Gaussian ``N(mean, cov)`` of the training latents, the
  maximum-entropy law with those two moments (Cover & Thomas, *Elements of Information
  Theory*, Thm. 8.6.5), with its exact ``log_prob``. A real solver should beat it.
* ``memoriser``: resamples the training points with replacement. Close to the target at
  large n_train in low d, but it has learned nothing; its W2 to the test set is the
  empirical-measure rate of Fournier & Guillin (PTRF 2015).

None trains a network: :meth:`fit` computes closed-form statistics (no optimiser, no EMA)
and returns the contract's statistics (``steps`` 0, ``final_loss`` the criterion it
minimises in closed form: the mean squared distance to the mean, the Gaussian NLL, 0).
They accept the shared training keys (so a sweep that sets ``solver.steps`` runs them) and
ignore them. ``nfe`` is 1 per sampling call: one draw from a closed-form law.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from genbench.core.budget import BudgetConfig
from genbench.core.solver import Solver, SolverConfig, TrainCallback, register_solver

__all__ = ["Collapse", "CollapseConfig", "Gaussian", "Memoriser"]


class _Reference(Solver):
    """Shared fit/device plumbing of the ladder: state lives in buffers, not parameters."""

    @classmethod
    def apply_budget(cls, config: SolverConfig, budget: BudgetConfig) -> dict[str, Any]:
        """Nothing to spend: no training steps, one draw (NFE 1) whatever the budget."""
        return {}

    @property
    def device(self) -> torch.device:
        return next(self.buffers()).device

    def trainable_module(self) -> torch.nn.Module:
        raise NotImplementedError(f"solver {self.name!r} has no trainable module")

    def build_ema(self) -> None:
        """Nothing to average: the ladder has no network."""

    def _fit_closed_form(self, z: Tensor) -> float:
        """Set the buffers from the training latents; return the criterion reached."""
        raise NotImplementedError

    def fit(self, z: Tensor, *, steps: int | None = None, callback: TrainCallback | None = None,
            progress: bool = False) -> dict[str, Any]:
        z = self.check_data(z)
        start = time.perf_counter()
        with torch.no_grad():
            final = float(self._fit_closed_form(z))
        self._fitted.fill_(True)
        if callback is not None:
            callback(0, {"loss": final})
        return {"steps": 0, "final_loss": final, "loss_curve": [[0, final]],
                "train_seconds": time.perf_counter() - start}


@dataclass
class CollapseConfig(SolverConfig):
    jitter: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.jitter >= 0:
            raise ValueError(f"jitter must be >= 0, got {self.jitter}")


@register_solver("collapse")
class Collapse(_Reference):
    """Every sample at the training mean (plus a tiny jitter)."""

    Config = CollapseConfig
    config: CollapseConfig

    def build(self) -> None:
        self.register_buffer("mean", torch.zeros(self.dim))
        self.register_buffer("sd", torch.ones(self.dim))

    def _fit_closed_form(self, z: Tensor) -> float:
        self.mean.copy_(z.mean(dim=0))
        self.sd.copy_(z.std(dim=0) if len(z) > 1 else torch.ones(self.dim))
        return self.loss(z).item()

    def loss(self, z: Tensor) -> Tensor:
        return (z - self.mean).pow(2).sum(dim=1).mean()

    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        self.nfe = 1
        noise = torch.randn(n, self.dim, generator=generator, device=self.device)
        return self.mean + self.config.jitter * self.sd * noise


@register_solver("gaussian")
class Gaussian(_Reference):
    """The moment-matched Gaussian of the training latents, with its exact density."""

    has_density = True

    def build(self) -> None:
        self.register_buffer("mean", torch.zeros(self.dim))
        self.register_buffer("scale_tril", torch.eye(self.dim))

    def _fit_closed_form(self, z: Tensor) -> float:
        z64 = z.double()
        mean = z64.mean(dim=0)
        centred = z64 - mean
        cov = centred.T @ centred / max(len(z) - 1, 1)
        # A ridge of 1e-6 of the mean variance keeps a rank-deficient sample factorisable.
        ridge = 1e-6 * float(cov.diagonal().mean().clamp_min(1e-12))
        cov = cov + ridge * torch.eye(self.dim, dtype=cov.dtype, device=cov.device)
        self.mean.copy_(mean.float())
        self.scale_tril.copy_(torch.linalg.cholesky(cov).float())
        return self.loss(z).item()

    def _distribution(self) -> torch.distributions.MultivariateNormal:
        return torch.distributions.MultivariateNormal(self.mean.double(),
                                                      scale_tril=self.scale_tril.double())

    def loss(self, z: Tensor) -> Tensor:
        return -self._distribution().log_prob(z.double()).mean().float()

    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        self.nfe = 1
        eps = torch.randn(n, self.dim, generator=generator, device=self.device)
        return self.mean + eps @ self.scale_tril.T

    def _log_prob(self, z: Tensor) -> Tensor:
        return self._distribution().log_prob(z.double()).float()


@register_solver("memoriser")
class Memoriser(_Reference):
    """Resamples the training latents with replacement."""

    def build(self) -> None:
        self.register_buffer("points", torch.zeros(0, self.dim))

    def _fit_closed_form(self, z: Tensor) -> float:
        self.points = z.detach().clone()
        return 0.0

    def loss(self, z: Tensor) -> Tensor:
        return torch.zeros((), device=z.device)

    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        if len(self.points) == 0:
            raise RuntimeError("memoriser has no training points: call fit first")
        self.nfe = 1
        idx = torch.randint(len(self.points), (n,), generator=generator, device=self.device)
        return self.points[idx]

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        # The buffer's length is the training set's: resize before the shape-checked copy.
        saved = state_dict.get(prefix + "points")
        if saved is not None:
            self.points = torch.empty_like(saved, device=self.points.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
