"""Score-based DDPM: epsilon-prediction, linear or cosine schedule, ancestral or DDIM sampling.

Training draws ``t`` uniformly from ``1..T`` and regresses the noise ``eps`` of
``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``. Sampling runs ``sample_steps`` evenly
strided steps (all ``T`` by default), ancestral (respaced posterior, Nichol & Dhariwal 2021)
or deterministic DDIM, so NFE can be swept without retraining. The predicted ``x_0`` is
clipped to the training latents' range (``clip_x0``, as Ho et al. clip images to [-1, 1]):
with the cosine schedule ``sqrt(abar_T)`` is ~5e-5, and without the clip a strided first
step carries the network's error, divided by it, into the sample.

References:
    Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
    Song, Meng, Ermon, "Denoising Diffusion Implicit Models", ICLR 2021.
    Oko, Akiyama, Suzuki, "Diffusion Models are Minimax Optimal Distribution Estimators",
    ICML 2023 (the TV rate n^(-s/(2s+d)) quoted in the rate study).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from genbench.core.budget import BudgetConfig, BudgetError
from genbench.core.progress import bar
from genbench.core.regression import Regression
from genbench.core.solver import Solver, SolverConfig, register_solver
from solvers.nets import TimeMLP
from solvers.schedules import SCHEDULES, discrete_alpha_bars

__all__ = ["DDPM", "DDPMConfig"]


@dataclass
class DDPMConfig(SolverConfig):
    # Measured on moons/checkerboard (seed 0, W2/floor): linear + lr 2e-3 1.70/1.60, cosine +
    # 2e-3 1.15/1.15, linear + 5e-3 1.32/1.07, cosine + 5e-3 1.01/0.95.
    lr: float = 5e-3
    # linear | cosine (Nichol & Dhariwal: less time spent near pure noise)
    schedule: str = "cosine"
    timesteps: int = 1000
    sample_steps: int = 1000  # strided sampling: fewer steps, fewer NFE
    sampler: str = "ancestral"  # ancestral | ddim
    eta: float = 0.0  # DDIM noise (0: deterministic)
    # clip the predicted x0 to the training latents' range (+10%): stable strided/DDIM steps
    clip_x0: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.sampler not in ("ancestral", "ddim"):
            raise ValueError(f"sampler must be 'ancestral' or 'ddim', got {self.sampler!r}")
        if not 1 <= self.sample_steps <= self.timesteps:
            raise ValueError(
                f"sample_steps must lie in [1, timesteps={self.timesteps}], got {self.sample_steps}"
            )


@register_solver("ddpm")
class DDPM(Solver):
    """Denoising diffusion probabilistic model on latents (epsilon-prediction)."""

    Config = DDPMConfig
    batch_seeds = True  # seeds can train as one batched model (genbench.core.ensemble)
    config: DDPMConfig
    sampling_keys = ("sample_steps", "sampler", "eta", "clip_x0")

    def build(self) -> None:
        cfg = self.config
        self.net = TimeMLP(self.dim, cfg.hidden, cfg.depth)
        self.register_buffer(
            "alpha_bars", discrete_alpha_bars(cfg.schedule, cfg.timesteps).float(), persistent=False
        )
        # The training latents' range, widened by 10 % of its span each side (set by fit).
        self.register_buffer("x0_low", torch.full((self.dim,), -math.inf))
        self.register_buffer("x0_high", torch.full((self.dim,), math.inf))

    @torch.no_grad()
    def prepare(self, z: Tensor) -> None:
        low, high = z.min(dim=0).values, z.max(dim=0).values
        margin = 0.1 * (high - low)
        self.x0_low.copy_(low - margin)
        self.x0_high.copy_(high + margin)

    def regression(self, z: Tensor) -> Regression:
        """Ho et al.'s simplified objective (eq. 14): ``eps_theta(x_t, t / T)`` regresses the
        noise ``eps`` of ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``, ``t ~ U{1..T}``
        (draws: ``t``, then ``eps``)."""
        T = self.config.timesteps
        t = torch.randint(1, T + 1, (z.shape[0],), device=z.device)
        abar = self.alpha_bars[t - 1][:, None]
        eps = torch.randn_like(z)
        x_t = abar.sqrt() * z + (1 - abar).sqrt() * eps
        return Regression(x_t, t.float() / T, eps)

    def loss(self, z: Tensor) -> Tensor:
        return self.regression(z).loss_of(self.net)

    @classmethod
    def apply_budget(cls, config: DDPMConfig, budget: BudgetConfig) -> dict[str, Any]:
        """NFE = ``sample_steps`` (one network call per strided step), at most ``timesteps``."""
        overrides = super().apply_budget(config, replace(budget, nfe=None))
        if budget.nfe is not None:
            if budget.nfe > config.timesteps:
                raise BudgetError(f"solver 'ddpm': budget.nfe={budget.nfe} exceeds its "
                                  f"timesteps={config.timesteps} (one call per timestep)")
            overrides["sample_steps"] = budget.nfe
        return overrides

    def timestep_grid(self) -> list[int]:
        """The strided timesteps visited by the sampler, from ``T`` down to 1."""
        T, S = self.config.timesteps, self.config.sample_steps
        grid = torch.linspace(T, 1, S).round().long().unique_consecutive()
        return grid.tolist()

    @torch.no_grad()
    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        cfg = self.config
        net = self.ema.module
        # Step coefficients as Python floats: the loop never reads back from the device.
        abars = discrete_alpha_bars(cfg.schedule, cfg.timesteps).tolist()
        grid = self.timestep_grid()
        x = torch.randn(n, self.dim, generator=generator, device=self.device)
        for i, t in enumerate(bar(desc=f"sample ddpm ({cfg.sampler})", unit="step", iterable=grid)):
            abar = abars[t - 1]
            abar_prev = abars[grid[i + 1] - 1] if i + 1 < len(grid) else 1.0
            eps = net(x, t / cfg.timesteps)
            x0 = (x - (1 - abar) ** 0.5 * eps) / abar**0.5
            if cfg.clip_x0:
                # Near t = T, x0 = (x - sqrt(1 - abar) eps) / sqrt(abar) multiplies the net's
                # error by 1/sqrt(abar) (2e4 for the cosine schedule); a strided step carries
                # it into x. Clipping to the data's range (Ho et al. clip to [-1, 1]) stops it.
                x0 = torch.maximum(torch.minimum(x0, self.x0_high), self.x0_low)
            if cfg.sampler == "ddim":
                eps = (x - abar**0.5 * x0) / (1 - abar) ** 0.5  # the eps of the (clipped) x0
                var = cfg.eta**2 * (1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)
                x = abar_prev**0.5 * x0 + max(0.0, 1 - abar_prev - var) ** 0.5 * eps
            else:
                beta = 1 - abar / abar_prev
                x = (abar_prev**0.5 * beta * x0 + (1 - beta) ** 0.5 * (1 - abar_prev) * x) / (
                    1 - abar
                )
                var = beta * (1 - abar_prev) / (1 - abar)
            if var > 0:
                x = x + var**0.5 * torch.randn(x.shape, generator=generator, device=self.device)
        self.nfe = len(grid)
        return x
