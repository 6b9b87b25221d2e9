"""VP-SDE score model, sampled by its reverse-time SDE or its probability-flow ODE, with
exact log-likelihoods through the PF-ODE.

A noise-prediction network ``eps(x, t)`` is trained by denoising score matching on
``x_t = alpha(t) x_0 + sigma(t) eps`` with ``t`` drawn in ``[train_t_eps, T]`` (uniform in
log-SNR by default, ``time_sampling``); the score is ``-eps(x, t) / sigma(t)``. The
probability-flow ODE

    dx/dt = -1/2 beta(t) (x + score(x, t)) = -1/2 beta(t) (x - eps(x, t) / sigma(t))

run from ``t_eps`` up to ``T`` gives ``log p_{t_eps}(x)`` by the instantaneous change of
variables (:func:`solvers.ode.flow_log_prob`; adaptive dopri5 by default). Samples start
from ``x(T) ~ N(0, I)`` (``T = 1`` for the linear schedule) and follow one of three samplers
down to ``t_eps``: ``ancestral`` (the default: ``sde_steps`` steps of the Gaussian posterior
``q(x_s | x_t, x0_hat)``, DDPM's sampler on a grid of the continuous schedule), ``sde``
(Euler-Maruyama on the reverse-time SDE in ``sde_steps`` steps with torchsde) or ``ode``
(the PF-ODE itself: :func:`solvers.ode.integrate`, ``method``/``sample_steps``). With an
exact score all three carry ``N(0, I)`` to ``p_{t_eps}`` as their steps shrink (Song et al.,
Sec. 4.2-4.3); with a learned one the stochastic samplers correct score errors that the ODE
carries into the samples (benchmarks/results/pfode_rootcause.md), so only ``sampler: ode``
makes samples and density describe one distribution.

References:
    Song, Sohl-Dickstein, Kingma, Kumar, Ermon, Poole, "Score-Based Generative Modeling
    through Stochastic Differential Equations", ICLR 2021.
    Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020 (the ancestral
    step, their eq. 6-7 and Alg. 2).
    Vincent, "A Connection Between Score Matching and Denoising Autoencoders", Neural
    Computation 2011.
    Chen, Rubanova, Bettencourt, Duvenaud, "Neural Ordinary Differential Equations",
    NeurIPS 2018.
    Kingma, Salimans, Poole, Ho, "Variational Diffusion Models", NeurIPS 2021; Kingma, Gao,
    "Understanding Diffusion Objectives as the ELBO with Simple Data Augmentation", NeurIPS
    2023 (the time distribution as a weighting over log-SNR).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from genbench.core.budget import BudgetConfig
from genbench.core.progress import bar
from genbench.core.regression import Regression
from genbench.core.solver import register_solver
from solvers.nets import SMOOTH_TIME_FREQUENCY, TimeMLP
from solvers.ode import ODEFlowSolver, ODESamplerConfig
from solvers.schedules import SCHEDULES, VPSchedule
from solvers.sde import SDE
from solvers.sde import integrate as sde_integrate

__all__ = ["PFODE", "PFODEConfig", "SAMPLERS", "TIME_SAMPLINGS"]

SAMPLERS = ("ancestral", "sde", "ode")
TIME_SAMPLINGS = ("uniform", "logsnr")


@dataclass
class PFODEConfig(ODESamplerConfig):
    # Measured on moons/8gaussians/checkerboard: mean W2/floor 1.54 at 2e-3, 1.32 at 5e-3.
    lr: float = 5e-3
    schedule: str = "linear"  # linear | cosine (continuous VP schedules)
    beta_min: float = 0.1
    beta_max: float = 20.0
    # Training times lie in [train_t_eps, T]. No sampler and no log_prob evaluates the net
    # below t_eps, so training there only spends draws (log-SNR law: ~19 % of them below
    # 1e-3); benchmarks/results/pfode_rootcause.md.
    train_t_eps: float = 1e-3
    t_eps: float = 1e-3  # sampling stops (and log_prob starts) at t_eps >= train_t_eps
    # ODE start time T; None: 1 (linear) or 0.99 (cosine, whose beta diverges at 1)
    t_max: float | None = None
    # Training times: uniform in t (Song et al.) or in log-SNR (benchmarks/results/
    # pfode_rootcause.md: uniform t leaves the score undertrained at the noise levels that
    # shape the data; same minimiser, other weighting).
    time_sampling: str = "logsnr"  # uniform | logsnr
    # Sampler: DDPM's ancestral steps or Euler-Maruyama on the reverse-time SDE (both
    # sde_steps steps), or the PF-ODE (method, rtol/atol or sample_steps). log_prob is
    # always the PF-ODE's exact likelihood.
    sampler: str = "ancestral"  # ancestral | sde | ode
    sde_steps: int = 500  # steps of the stochastic samplers (ancestral, sde)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.time_sampling not in TIME_SAMPLINGS:
            raise ValueError(f"time_sampling must be one of {TIME_SAMPLINGS}, "
                             f"got {self.time_sampling!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if isinstance(self.sde_steps, bool) or not isinstance(self.sde_steps, int) \
                or self.sde_steps <= 0:
            raise ValueError(f"sde_steps must be a positive int, got {self.sde_steps!r}")
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
        if self.t_eps < self.train_t_eps:
            raise ValueError(f"t_eps ({self.t_eps}) must be >= train_t_eps "
                             f"({self.train_t_eps}): the net is not trained below "
                             f"train_t_eps (set train_t_eps <= t_eps to sample lower)")
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
    sampling_keys = (*ODEFlowSolver.sampling_keys, "t_eps", "sampler", "sde_steps")

    @classmethod
    def apply_budget(cls, config: PFODEConfig, budget: BudgetConfig) -> dict[str, Any]:
        """The stochastic samplers spend ``budget.nfe`` as ``sde_steps`` (one call per step);
        the ODE sampler as the other flows do (:meth:`ODEFlowSolver.apply_budget`)."""
        if config.sampler == "ode":
            return super().apply_budget(config, budget)
        overrides = super().apply_budget(config, replace(budget, nfe=None))
        if budget.nfe is not None:
            overrides["sde_steps"] = budget.nfe
        return overrides

    def build(self) -> None:
        cfg = self.config
        self.schedule = VPSchedule(cfg.schedule, cfg.beta_min, cfg.beta_max)
        # Python floats, computed once on the host: no device read per training step.
        ends = torch.tensor([cfg.horizon, cfg.train_t_eps], dtype=torch.float64)
        self._log_snr_range = tuple(self.schedule.log_snr(ends).tolist())
        self.net = TimeMLP(self.dim, cfg.hidden, cfg.depth, max_frequency=SMOOTH_TIME_FREQUENCY)

    def regression(self, z: Tensor) -> Regression:
        """Denoising score matching (Song et al. 2021, eq. 7, eps-parametrised): ``eps(x_t, t)``
        regresses the noise of ``x_t = alpha(t) z + sigma(t) eps`` (draws: ``t`` by
        :meth:`training_times`, then ``eps``)."""
        t = self.training_times(z.shape[0], z.device)
        alpha, sigma = self.schedule.alpha_sigma(t[:, None])
        eps = torch.randn_like(z)
        return Regression(alpha * z + sigma * eps, t, eps)

    def loss(self, z: Tensor) -> Tensor:
        return self.regression(z).loss_of(self.net)

    def training_times(self, n: int, device: torch.device) -> Tensor:
        """``n`` training times in ``[train_t_eps, T]``: uniform in ``t``, or uniform in the
        log-SNR ``lambda(t) = log(alpha^2 / sigma^2)`` and mapped back to ``t``.

        Kingma, Salimans, Poole, Ho (VDM, NeurIPS 2021, Sec. 5) and Kingma and Gao (NeurIPS
        2023, Sec. 3) write the denoising loss as an integral over ``lambda``: drawing ``t``
        uniformly weights the noise MSE by the density ``p(lambda) = -dt/dlambda`` of the
        schedule, and another ``p(lambda)`` only re-weights the noise levels. For every
        ``t`` the minimiser is still ``E[eps | x_t]`` (Vincent 2011), so the score, the
        PF-ODE and its likelihood are the same functions of the net; what changes is where
        a finite net and a finite budget spend their accuracy. On ``[1e-3, 1]`` the linear
        schedule's uniform ``t`` puts ~9 % of the draws at ``sigma < 0.3``; uniform
        ``lambda`` ~36 %.
        """
        cfg = self.config
        u = torch.rand(n, device=device)
        if cfg.time_sampling == "uniform":
            return cfg.train_t_eps + (cfg.horizon - cfg.train_t_eps) * u
        lam_lo, lam_hi = self._log_snr_range
        lam = lam_lo + (lam_hi - lam_lo) * u
        return self.schedule.time_of_log_snr(lam).clamp(cfg.train_t_eps, cfg.horizon)

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

    @torch.no_grad()
    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        if self.config.sampler == "ode":
            return super()._sample(n, generator)
        if self.config.sampler == "ancestral":
            return self.ancestral_sample(n, generator)
        return self.reverse_sde_sample(n, generator)

    def ancestral_sample(self, n: int, generator: torch.Generator) -> Tensor:
        """DDPM's ancestral sampler on ``sde_steps`` equal steps of ``[t_eps, T]``.

        From ``t`` to ``s < t``: ``x_s ~ q(x_s | x_t, x0_hat)``, the Gaussian posterior of the
        forward process (Ho et al. 2020, eq. 6-7; Kingma et al., VDM, NeurIPS 2021, App. A)
        with ``x0_hat = (x_t - sigma_t eps(x_t, t)) / alpha_t``. With
        ``alpha_ts = alpha_t / alpha_s`` and ``sigma_ts^2 = sigma_t^2 - alpha_ts^2 sigma_s^2``
        its mean is ``(x_t - sigma_ts^2 / sigma_t * eps) / alpha_ts`` and its variance
        ``sigma_ts^2 sigma_s^2 / sigma_t^2`` (Ho et al.'s Alg. 2 on a continuous grid).
        The step agrees with Euler-Maruyama on the reverse SDE to first order in the step
        (Song et al. 2021, Sec. 4.2 and App. E call it ancestral sampling), and both reach
        the same law as the steps shrink. An approximation of ``p_{t_eps}`` like every
        finite-step sampler: ``x0_hat`` replaces the posterior law of ``x0`` by its mean,
        which removes a little spread per step. With a learned score that offsets part of
        the score's blur, so at 500 steps it scores better than its own many-step limit
        (benchmarks/results/pfode_rootcause.md, "Session 5"); with the exact score its
        500-step law matches the target (tests/test_oracles.py). Every step adds its
        posterior noise, so the output is a draw of ``p_{t_eps}``, whose density
        ``log_prob`` gives.
        """
        cfg = self.config
        net = self.ema.module
        times = torch.linspace(self.t_prior, self.t_data, cfg.sde_steps + 1, dtype=torch.float64)
        alpha, sigma = self.schedule.alpha_sigma(times)
        # Step coefficients as Python floats: the loop never reads back from the device.
        a, s, ts = alpha.tolist(), sigma.tolist(), times.tolist()
        x = torch.randn(n, self.dim, generator=generator, device=self.device)
        for i in bar(desc="sample pfode (ancestral)", unit="step", iterable=range(cfg.sde_steps)):
            a_ts = a[i] / a[i + 1]
            var_ts = s[i] ** 2 - a_ts**2 * s[i + 1] ** 2
            x = (x - (var_ts / s[i]) * net(x, ts[i])) / a_ts
            noise = torch.randn(x.shape, generator=generator, device=self.device)
            x = x + (var_ts * s[i + 1] ** 2 / s[i] ** 2) ** 0.5 * noise
        self.nfe = cfg.sde_steps
        return x

    def reverse_sde_sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Euler-Maruyama on the reverse-time VP SDE from ``x(T) ~ N(0, I)`` to ``t_eps``.

        Song et al. (ICLR 2021), eq. 6 with the VP SDE's ``f = -beta x / 2``, ``g = sqrt(beta)``
        (their eq. 11): ``dx = [-beta(t) x / 2 - beta(t) score(x, t)] dt + sqrt(beta(t)) dw``
        with time running backwards, ``score = -eps(x, t) / sigma(t)``. On torchsde's clock
        ``s in [0, sde_steps]``, ``t = T - s h`` with ``h = (T - t_eps) / sde_steps``, an exact
        time change: drift ``h beta (x / 2 + score)``, diffusion ``sqrt(h beta)``. The
        Euler-Maruyama step is Song et al.'s "reverse diffusion" predictor up to O(h^2)
        (their Sec. 4.2); its law error is O(h), an approximation of the SDE's marginals.
        Same score as the PF-ODE: both carry ``N(0, I)`` at ``T`` to ``p_t_eps`` when the
        score is exact (their Sec. 4.3); the SDE's noise contracts score errors, the ODE
        carries them to the sample.
        """
        cfg = self.config
        net = self.ema.module
        t_top, h = self.t_prior, (self.t_prior - self.t_data) / cfg.sde_steps

        def drift(x: Tensor, s: Tensor) -> Tensor:
            t = t_top - s * h
            _, sigma = self.schedule.alpha_sigma(t)
            return h * self.schedule.beta(t) * (0.5 * x - net(x, t) / sigma)

        def diffusion(x: Tensor, s: Tensor) -> Tensor:
            return (h * self.schedule.beta(t_top - s * h)).sqrt().expand_as(x)

        sde = SDE(drift, diffusion)
        prior = torch.randn(n, self.dim, generator=generator, device=self.device)
        x = sde_integrate(sde, prior, cfg.sde_steps, method="euler", generator=generator)
        self.nfe = sde.nfe
        return x
