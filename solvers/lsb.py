"""Latent Schrödinger bridge: a Brownian reference ``sigma W`` on [0, 1], sampled by torchsde.

Both starts put the training pair on a Gaussian path ``x_t = a(t) y + s(t) eps`` (y from the
target latent law p, eps ~ N(0, I)) and sample ``dX = b(X, t) dt + sigma dW`` with

    b(x, t) = (E[y | x_t = x] - x) / (1 - t).                                         (*)

- ``start: convolved`` (the default; the construction of Jiao, Kang, Lin, Liu, Zuo,
  arXiv 2404.13309): the SDE carries the Gaussian-convolved latent law p * N(0, sigma^2 I)
  to p. It is the time reversal of Brownian motion started at p, ``a = 1,
  s = sigma sqrt(1 - t)``: by Tweedie's formula (*) is
  sigma^2 grad log(p * N(0, sigma^2 (1 - t) I)), so the regression below is denoising score
  matching on Z_t = y + sigma sqrt(1 - t) eps. The start X_0 is drawn from the *empirical*
  convolved law, z_i + sigma eps with z_i a training latent chosen uniformly (the training
  latents are kept in the buffer ``start_latents``), as the paper does; no Gaussian is
  fitted to p.
- ``start: schrodinger_follmer`` (delta_0 -> p; Huang, Jiao et al., arXiv 2106.10880): the
  Brownian bridge from 0, ``a = t, s = sigma sqrt(t (1 - t))``, and (*) is
  E[(y - X_t) / (1 - t) | X_t = x], the Föllmer drift. X_0 = 0.

Parametrisation (``prediction``). The network reads ``c_in (x - a m)``, scaled to unit
variance, and predicts the noise eps (``eps``, the default), so E[y | x_t] = (x - s eps) / a
and the drift follows from (*). At the Föllmer start t = 0, x - a m and s both vanish and the
formula returns m = E[y], the exact drift there. The drift regression target
(y - x_t) / (1 - t) has variance ~ 1 / (1 - t); predicting eps instead, an error dF costs the
drift ``sigma dF / sqrt(t (1 - t))`` (Föllmer start), integrable at both ends of [0, 1], where
an error dD of an x0-prediction (``x0``: D = m + sd F) costs dD / (1 - t), whose integral
grows like log(1 / delta). (The EDM preconditioning, a residual over the Gaussian posterior
mean, was tried and dropped: for standardised latents the residual has no linear part and
the MLP stays at the saddle F = 0.)

Time weighting. The clock ``t = 1 - (1 - c u)^p`` with ``c = 1 - delta^(1/p)`` and
``p = time_power`` maps u in [0, 1] onto [0, 1 - delta]; training draws u ~ U(0, 1), the
network reads u, and the sampler takes its steps uniformly in u. The fraction of training
draws and of steps with 1 - t < e is about e^(1/p): p > 1 spends them near t = 1, where
the noise level s / a ~ sqrt(1 - t) is small and the fine structure of p is resolved.
``weighting: unit`` (the default) weights the squared error of F by 1, a target of unit
variance at every t; ``x0`` weights |D - y|^2 and ``drift`` the literal drift regression
|b - (y - x_t) / (1 - t)|^2 (both divided by sd^2, the mean latent variance); with eps
prediction their weights (s / a)^2 and (s / (a (1 - t)))^2 explode at the ends, which is
why they are only kept for comparison.

Sampling integrates the SDE with ``torchsde.sdeint`` (``sde_method``) in ``sde_steps``
steps from t = 0 to the early stop T = 1 - delta (an exact piecewise-linear time change
puts torchsde's unit steps on the grid), then takes one denoising step: the sample is
E[y | X_T] (Tweedie). NFE = drift calls + 1.

References:
    Jiao, Kang, Lin, Liu, Zuo, "Latent Schrödinger Bridge Diffusion Model for Generative
    Learning", arXiv 2404.13309.
    Huang, Jiao, Kang, Liao, Liu, Liu, "Schrödinger-Föllmer Sampler", arXiv 2106.10880.
    Wang, Jiao, Xu, Yang, Liu, "Deep Generative Learning via Schrödinger Bridge", ICML 2021
    (arXiv 2106.10410).
    Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020 (the
    eps-prediction loss).
    Karras, Aittala, Aila, Laine, "Elucidating the Design Space of Diffusion-Based Generative
    Models", NeurIPS 2022 (input scaling c_in; time steps concentrated near the data).
    Vincent, "A Connection Between Score Matching and Denoising Autoencoders", Neural
    Computation 2011 (denoising score matching).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from genbench.core.budget import BudgetConfig, BudgetError
from genbench.core.regression import Regression
from genbench.core.solver import Solver, SolverConfig, register_solver
from solvers.nets import TimeMLP
from solvers.sde import ITO_DIAGONAL_METHODS, SDE, integrate

__all__ = ["LSB", "LSBConfig"]

STARTS = ("convolved", "schrodinger_follmer")
# Former names: ``delta`` was the Schrödinger-Föllmer start; ``smoothed`` replaced
# p * N(0, sigma^2 I) by a Gaussian fit to it (a bridge between other endpoints) and is gone.
RENAMED_STARTS = {"delta": "schrodinger_follmer", "smoothed": "convolved"}
PREDICTIONS = ("eps", "x0")
WEIGHTINGS = ("unit", "x0", "drift")


@dataclass
class LSBConfig(SolverConfig):
    # convolved (the paper: X_0 = z_i + sigma eps, z_i a training latent) |
    # schrodinger_follmer (the Schrödinger-Föllmer bridge from X_0 = 0)
    start: str = "convolved"
    sigma: float = 1.0  # reference diffusion sigma W
    # early stop at T = 1 - delta, then one Tweedie denoising step
    delta: float = 1e-3
    prediction: str = "eps"  # eps (noise) | x0 (E[y | x_t] directly)
    weighting: str = "unit"  # unit (unit-variance target) | x0 (|D - y|^2) | drift (raw MSE)
    # clock 1 - t = (1 - c u)^p: training draws and SDE steps near t = 1
    time_power: float = 5.0
    sde_steps: int = 100  # SDE steps, uniform in the clock u; NFE = drift calls + 1
    sde_method: str = "euler"  # torchsde Ito diagonal-noise method: euler | milstein | srk

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.start in RENAMED_STARTS:
            raise ValueError(
                f"start {self.start!r} is no longer offered: use "
                f"{RENAMED_STARTS[self.start]!r} (one of {STARTS}; see solvers/lsb.py)"
            )
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {self.start!r}")
        if not self.sigma > 0:
            raise ValueError(f"sigma must be positive, got {self.sigma}")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta (early stop at 1 - delta) must be in (0, 1), got {self.delta}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if not self.time_power >= 1:
            raise ValueError(f"time_power must be >= 1 (1: uniform in t), got {self.time_power}")
        if self.sde_steps <= 0:
            raise ValueError(f"sde_steps must be positive, got {self.sde_steps}")
        if self.sde_method not in ITO_DIAGONAL_METHODS:
            raise ValueError(
                f"sde_method must be a torchsde method for Ito SDEs with diagonal noise, one of "
                f"{ITO_DIAGONAL_METHODS}, got {self.sde_method!r}"
            )


@register_solver("lsb")
class LSB(Solver):
    """Latent Schrödinger bridge (from p * N(0, sigma^2 I), or Schrödinger-Föllmer from 0)."""

    Config = LSBConfig
    batch_seeds = True  # seeds can train as one batched model (genbench.core.ensemble)
    config: LSBConfig
    sampling_keys = ("sde_steps", "sde_method")
    # drift calls per SDE step (srk evaluates the drift at several stages: not mapped)
    _DRIFT_CALLS = {"euler": 1, "milstein": 1}

    @classmethod
    def apply_budget(cls, config: LSBConfig, budget: BudgetConfig) -> dict[str, Any]:
        """NFE = ``sde_steps`` drift calls + 1 final denoising call (euler, milstein)."""
        overrides = super().apply_budget(config, replace(budget, nfe=None))
        if budget.nfe is not None:
            calls = cls._DRIFT_CALLS.get(config.sde_method)
            if calls is None:
                raise BudgetError(f"solver 'lsb': budget.nfe has no mapping for sde_method="
                                  f"{config.sde_method!r}; use {' or '.join(cls._DRIFT_CALLS)}")
            if budget.nfe < 2:
                raise BudgetError("solver 'lsb': budget.nfe must be >= 2 (one SDE step and "
                                  "the final denoising call)")
            overrides["sde_steps"] = (budget.nfe - 1) // calls
        return overrides

    def build(self) -> None:
        cfg = self.config
        self.net = TimeMLP(self.dim, cfg.hidden, cfg.depth)
        # Moments of the training latents (set by fit; standard-normal defaults before).
        self.register_buffer("data_mean", torch.zeros(self.dim))
        self.register_buffer("data_var", torch.ones(()))
        # The training latents: the convolved start draws z_i + sigma eps from them.
        self.register_buffer("start_latents", torch.zeros(1, self.dim))

    def prepare(self, z: Tensor) -> None:
        self._set_moments(z)

    @torch.no_grad()
    def _set_moments(self, z: Tensor) -> None:
        self.data_mean.copy_(z.mean(dim=0))
        self.start_latents = z.detach().clone()
        if z.shape[0] < 2:  # one point has no spread: keep the unit-variance defaults
            return
        cov = torch.atleast_2d(torch.cov(z.T))
        self.data_var.copy_(cov.diagonal().mean().clamp(min=1e-6))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        # The number of training latents is known only from the saved state.
        saved = state_dict.get(prefix + "start_latents")
        if saved is not None:
            self.start_latents = torch.empty_like(saved, device=self.start_latents.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def start_sample(self, n: int, generator: torch.Generator) -> Tensor:
        """X_0: z_i + sigma eps (i uniform over the training latents), or 0 (Föllmer)."""
        if self.config.start == "schrodinger_follmer":
            return torch.zeros(n, self.dim, device=self.device)
        latents = self.start_latents
        index = torch.randint(latents.shape[0], (n,), generator=generator, device=self.device)
        eps = torch.randn(n, self.dim, generator=generator, device=self.device)
        return latents[index] + self.config.sigma * eps

    # -- the clock, the Gaussian path and the denoiser ---------------------------------
    def time_of(self, u: Tensor) -> Tensor:
        """t(u) = 1 - (1 - c u)^p with c = 1 - delta^(1/p): t(0) = 0, t(1) = 1 - delta."""
        p = self.config.time_power
        c = 1 - self.config.delta ** (1 / p)
        return 1 - (1 - c * u) ** p

    def clock_of(self, t: Tensor) -> Tensor:
        """u(t), the inverse of :meth:`time_of` (the network's time input)."""
        p = self.config.time_power
        c = 1 - self.config.delta ** (1 / p)
        return (1 - (1 - t).clamp(min=0) ** (1 / p)) / c

    def _path(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """Signal scale a(t) and noise scale s(t) of x_t = a y + s eps."""
        sigma = self.config.sigma
        if self.config.start == "schrodinger_follmer":
            return t, sigma * (t * (1 - t)).clamp(min=0).sqrt()
        return torch.ones_like(t), sigma * (1 - t).clamp(min=0).sqrt()

    def _inputs(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The network's inputs ``(c_in (x - a m), u(t))`` at ``x_t = x``, and the affine map
        ``D = offset + scale * F`` from its output F to E[y | x_t = x]."""
        a, s = self._path(t)
        centred = x - a * self.data_mean
        # c_in: the inverse standard deviation of x_t (at the Föllmer start t = 0, x = 0).
        c_in = (a * a * self.data_var + s * s).clamp(min=1e-12).rsqrt()
        net_x, net_t = c_in * centred, self.clock_of(t).reshape(-1)
        if self.config.prediction == "x0":
            return net_x, net_t, self.data_mean.expand_as(x), self.data_var.sqrt().expand_as(t)
        # eps: y = (x - s eps) / a. At the Föllmer start t = 0, x - a m and s both vanish and
        # D = m = E[y], the exact drift there.
        inv_a = 1 / a.clamp(min=1e-6)
        return net_x, net_t, self.data_mean + centred * inv_a, -s * inv_a

    def _predict(self, net: Any, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Network output F and the affine map ``D = offset + scale * F`` to E[y | x_t = x]."""
        net_x, net_t, offset, scale = self._inputs(x, t)
        return net(net_x, net_t), offset, scale

    def denoise(self, x: Tensor, t: Tensor | float, *, net: Any = None) -> Tensor:
        """E[y | x_t = x]: the model's posterior mean of the target."""
        net = self.ema.module if net is None else net
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0])[:, None]
        out, offset, scale = self._predict(net, x, t)
        return offset + scale * out

    def drift(self, x: Tensor, t: Tensor | float, *, net: Any = None) -> Tensor:
        """b(x, t) = (E[y | x_t = x] - x) / (1 - t), for t < 1."""
        return (self.denoise(x, t, net=net) - x) / (1 - torch.as_tensor(t, dtype=x.dtype))

    def regression(self, z: Tensor) -> Regression:
        """The regression of the module docstring on ``x_t = a(t) y + s(t) eps`` (draws: the
        clock ``u``, then ``eps``): F regresses ``eps`` (or ``(y - offset) / scale`` for x0
        prediction) with weight 1, ``scale^2 / sd^2`` (x0) or
        ``scale^2 / ((1 - t)^2 sd^2)`` (drift)."""
        t = self.time_of(torch.rand(z.shape[0], 1, device=z.device))
        a, s = self._path(t)
        eps = torch.randn_like(z)
        x = a * z + s * eps
        net_x, net_t, offset, scale = self._inputs(x, t)
        target = eps if self.config.prediction == "eps" else (z - offset) / scale
        weighting = self.config.weighting
        if weighting == "x0":  # |D - y|^2 / sd^2
            return Regression(net_x, net_t, target, (scale**2).reshape(-1), self.data_var)
        if weighting == "drift":  # |b - (y - x) / (1 - t)|^2 / sd^2
            return Regression(net_x, net_t, target, (scale**2).reshape(-1),
                              ((1 - t) ** 2 * self.data_var).reshape(-1))
        return Regression(net_x, net_t, target)

    def loss(self, z: Tensor) -> Tensor:
        return self.regression(z).loss_of(self.net)

    # -- sampling -----------------------------------------------------------------------
    def time_grid(self) -> list[float]:
        """The sampler's times t_0 = 0 < ... < t_N = 1 - delta (uniform in the clock u)."""
        u = torch.linspace(0, 1, self.config.sde_steps + 1, dtype=torch.float64)
        grid = self.time_of(u).tolist()
        grid[-1] = 1 - self.config.delta
        return grid

    @torch.no_grad()
    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        cfg = self.config
        net = self.ema.module
        grid = self.time_grid()
        steps = len(grid) - 1
        x0 = self.start_sample(n, generator)

        # torchsde runs on the clock s in [0, steps] with unit steps; t(s) is piecewise
        # linear through the grid, an exact time change: dX = b dt/ds ds + sigma sqrt(dt/ds) dW.
        # The step index stays on the device (floor + index_select): reading torchsde's clock
        # on the host would wait for the GPU once per step.
        times = torch.tensor(grid, dtype=x0.dtype).to(self.device)
        last_step = float(steps - 1)

        def locate(s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            k = s.detach().floor().clamp(0.0, last_step).reshape(1)
            index = k.long()
            start, end = times.index_select(0, index), times.index_select(0, index + 1)
            return k, start, end - start

        def drift(x: Tensor, s: Tensor) -> Tensor:
            k, start, width = locate(s)
            return self.drift(x, start + (s - k) * width, net=net) * width

        def diffusion(x: Tensor, s: Tensor) -> Tensor:
            _, _, width = locate(s)
            return (cfg.sigma * width.sqrt()).expand_as(x)

        sde = SDE(drift, diffusion)
        x_end = integrate(sde, x0, steps, method=cfg.sde_method, generator=generator)
        self.nfe = sde.nfe + 1  # the drift calls and the final denoising call
        return self.denoise(x_end, grid[-1], net=net)
