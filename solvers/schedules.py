"""Noise schedules of the variance-preserving (VP) diffusion, discrete and continuous.

References:
    Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020 (linear betas).
    Nichol, Dhariwal, "Improved Denoising Diffusion Probabilistic Models", ICML 2021 (cosine).
    Song et al., "Score-Based Generative Modeling through SDEs", ICLR 2021 (continuous VP-SDE).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["SCHEDULES", "VPSchedule", "discrete_alpha_bars"]

SCHEDULES = ("linear", "cosine")


def discrete_alpha_bars(kind: str, timesteps: int) -> Tensor:
    """Cumulative products ``alpha_bar_t`` for ``t = 1..timesteps`` (float64, decreasing)."""
    if kind == "linear":
        scale = 1000.0 / timesteps  # keeps the total noise of Ho et al.'s 1e-4..0.02 at T=1000
        betas = torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)
        return torch.cumprod(1.0 - betas, dim=0)
    if kind == "cosine":
        s = 0.008
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        return torch.cumprod(1.0 - betas, dim=0)
    raise ValueError(f"unknown schedule {kind!r}; choose one of {SCHEDULES}")


class VPSchedule:
    """Continuous VP-SDE ``dx = -beta(t) x / 2 dt + sqrt(beta(t)) dW`` on ``t in [0, 1]``.

    ``kind="linear"``: ``beta(t) = beta_min + t (beta_max - beta_min)``;
    ``kind="cosine"``: the continuous limit of Nichol and Dhariwal's schedule.
    """

    def __init__(self, kind: str = "linear", beta_min: float = 0.1, beta_max: float = 20.0):
        if kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}; choose one of {SCHEDULES}")
        self.kind, self.beta_min, self.beta_max = kind, beta_min, beta_max

    def log_alpha(self, t: Tensor) -> Tensor:
        """``log alpha(t)`` with ``x_t = alpha(t) x_0 + sigma(t) eps``."""
        if self.kind == "linear":
            return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
        s = 0.008
        f = torch.cos((t + s) / (1 + s) * math.pi / 2)
        return torch.log(f / math.cos(s / (1 + s) * math.pi / 2)).clamp(min=-30.0)

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        alpha = self.log_alpha(t).exp()
        return alpha, (1.0 - alpha**2).clamp(min=1e-12).sqrt()

    def log_snr(self, t: Tensor) -> Tensor:
        """``lambda(t) = log(alpha^2 / sigma^2)``, decreasing in ``t``."""
        log_alpha2 = 2 * self.log_alpha(t)
        return log_alpha2 - torch.log(-torch.expm1(log_alpha2))

    def time_of_log_snr(self, lam: Tensor) -> Tensor:
        """The inverse of :meth:`log_snr`: ``alpha^2 = sigmoid(lambda)``, solved for ``t``.

        linear: ``-log alpha = a t^2 + b t`` with ``a = (beta_max - beta_min) / 4`` and
        ``b = beta_min / 2``, a quadratic in ``t`` (Song et al. 2021, eq. 29); cosine:
        ``alpha = f(t) / f(0)``, ``f(t) = cos((t + s) / (1 + s) pi / 2)`` (Nichol and
        Dhariwal 2021, eq. 17), inverted by ``arccos``.
        """
        log_alpha = 0.5 * torch.nn.functional.logsigmoid(lam)
        if self.kind == "linear":
            a, b = 0.25 * (self.beta_max - self.beta_min), 0.5 * self.beta_min
            c = -log_alpha
            # the positive root, written to avoid cancellation when c is small
            return 2 * c / (b + (b * b + 4 * a * c).sqrt())
        s = 0.008
        f = log_alpha.exp() * math.cos(s / (1 + s) * math.pi / 2)
        return torch.arccos(f) * 2 / math.pi * (1 + s) - s

    def beta(self, t: Tensor) -> Tensor:
        """``beta(t) = -2 d log alpha / dt``."""
        if self.kind == "linear":
            return self.beta_min + t * (self.beta_max - self.beta_min)
        s = 0.008
        angle = (t + s) / (1 + s) * math.pi / 2
        return (math.pi / (1 + s) * torch.tan(angle)).clamp(max=1e3)
