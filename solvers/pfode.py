"""Probability-flow ODE of a variance-preserving SDE, with exact log-likelihoods.

A noise-prediction network ``eps(x, t)`` is trained by denoising score matching on
``x_t = alpha(t) x_0 + sigma(t) eps`` with ``t ~ U[train_t_eps, T]``; the score is
``-eps(x, t) / sigma(t)``. Samples solve the probability-flow ODE

    dx/dt = -1/2 beta(t) (x + score(x, t)) = -1/2 beta(t) (x - eps(x, t) / sigma(t))

from ``x(T) ~ N(0, I)`` (``T = 1`` for the linear schedule) down to ``t_eps`` with
:func:`solvers.ode.integrate` (adaptive dopri5 by default; euler/midpoint/rk4 with
``sample_steps`` steps to sweep NFE). The same ODE run from ``t_eps`` up to ``T`` gives
``log p_{t_eps}(x)`` by the instantaneous change of
variables (:func:`solvers.ode.flow_log_prob`), so samples and density describe one
distribution.

References:
    Song, Sohl-Dickstein, Kingma, Kumar, Ermon, Poole, "Score-Based Generative Modeling
    through Stochastic Differential Equations", ICLR 2021.
    Vincent, "A Connection Between Score Matching and Denoising Autoencoders", Neural
    Computation 2011.
    Chen, Rubanova, Bettencourt, Duvenaud, "Neural Ordinary Differential Equations",
    NeurIPS 2018.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from genbench.core.regression import Regression
from genbench.core.solver import register_solver
from solvers.nets import SMOOTH_TIME_FREQUENCY, TimeMLP
from solvers.ode import ODEFlowSolver, ODESamplerConfig
from solvers.schedules import SCHEDULES, VPSchedule

__all__ = ["PFODE", "PFODEConfig"]


@dataclass
class PFODEConfig(ODESamplerConfig):
    # Measured on moons/8gaussians/checkerboard: mean W2/floor 1.54 at 2e-3, 1.32 at 5e-3.
    lr: float = 5e-3
    schedule: str = "linear"  # linear | cosine (continuous VP schedules)
    beta_min: float = 0.1
    beta_max: float = 20.0
    train_t_eps: float = 1e-5  # training times t ~ U[train_t_eps, 1]
    t_eps: float = 1e-3  # sampling stops (and log_prob starts) at t_eps
    # ODE start time T; None: 1 (linear) or 0.99 (cosine, whose beta diverges at 1)
    t_max: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0 < self.beta_min < self.beta_max:
            raise ValueError(
                f"need 0 < beta_min < beta_max, got beta_min={self.beta_min}, "
                f"beta_max={self.beta_max}"
            )
        for key in ("train_t_eps", "t_eps"):
            if not 0 < getattr(self, key) < 1:
                raise ValueError(f"{key} must lie in (0, 1), got {getattr(self, key)}")
        if self.t_max is not None and not self.t_eps < self.t_max <= 1:
            raise ValueError(f"t_max must lie in (t_eps, 1] or be null, got {self.t_max}")

    @property
    def horizon(self) -> float:
        """The time ``T`` the ODE starts from: ``t_max``, else 1 (linear) or 0.99 (cosine).

        The cosine schedule's ``beta(t)`` diverges at ``t = 1`` and makes the ODE too stiff
        to start there; at 0.99 its ``alpha`` is 0.016, as close to pure noise as the linear
        schedule's 0.007 at 1.
        """
        if self.t_max is not None:
            return self.t_max
        return 1.0 if self.schedule == "linear" else 0.99


@register_solver("pfode")
class PFODE(ODEFlowSolver):
    """VP-SDE score model sampled (and scored) through its probability-flow ODE."""

    Config = PFODEConfig
    batch_seeds = True  # seeds can train as one batched model (genbench.core.ensemble)
    config: PFODEConfig
    sampling_keys = (*ODEFlowSolver.sampling_keys, "t_eps")

    def build(self) -> None:
        cfg = self.config
        self.schedule = VPSchedule(cfg.schedule, cfg.beta_min, cfg.beta_max)
        self.net = TimeMLP(self.dim, cfg.hidden, cfg.depth, max_frequency=SMOOTH_TIME_FREQUENCY)

    def regression(self, z: Tensor) -> Regression:
        """Denoising score matching (Song et al. 2021, eq. 7, eps-parametrised): ``eps(x_t, t)``
        regresses the noise of ``x_t = alpha(t) z + sigma(t) eps`` (draws: ``t``, ``eps``)."""
        t_min, t_max = self.config.train_t_eps, self.config.horizon
        t = t_min + (t_max - t_min) * torch.rand(z.shape[0], device=z.device)
        alpha, sigma = self.schedule.alpha_sigma(t[:, None])
        eps = torch.randn_like(z)
        return Regression(alpha * z + sigma * eps, t, eps)

    def loss(self, z: Tensor) -> Tensor:
        return self.regression(z).loss_of(self.net)

    @property
    def t_prior(self) -> float:
        return self.config.horizon

    @property
    def t_data(self) -> float:
        return self.config.t_eps

    def velocity(self, x: Tensor, t: Tensor) -> Tensor:
        """The probability-flow drift ``-1/2 beta(t) (x - eps(x, t) / sigma(t))`` (EMA net)."""
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        _, sigma = self.schedule.alpha_sigma(t)
        return -0.5 * self.schedule.beta(t) * (x - self.ema.module(x, t) / sigma)
