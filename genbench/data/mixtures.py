"""Isotropic Gaussian mixtures in any dimension, with an exact log-density.

Also the two classic 2-D mixtures, ``8gaussians`` and ``25gaussians``, so their density is
exact too (the Monte-Carlo TV and the NLL need it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from genbench.core.config import MAX_DATA_SCALE, check_range
from genbench.data.registry import register_dataset

__all__ = ["GaussianMixture", "MixtureParams", "eight_gaussians", "random_mixture",
           "twenty_five_gaussians"]


class GaussianMixture:
    """``sum_k w_k N(mu_k, std^2 I)`` with means of shape ``(K, d)``."""

    def __init__(self, means: np.ndarray, std: float, weights: np.ndarray | None = None):
        self.means = np.asarray(means, dtype=np.float64)
        if self.means.ndim != 2:
            raise ValueError(f"means must have shape (K, d), got {self.means.shape}")
        if std <= 0:
            raise ValueError(f"std must be positive, got {std}")
        k = self.means.shape[0]
        w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (k,) or np.any(w < 0) or not math.isclose(w.sum(), 1.0, rel_tol=1e-9):
            raise ValueError(f"weights must be {k} non-negative numbers summing to 1")
        self.std, self.weights = float(std), w

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        comp = rng.choice(len(self.weights), size=n, p=self.weights)
        return self.means[comp] + self.std * rng.standard_normal((n, self.dim))

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-density of rows of ``x`` (shape ``(n, d)``), as float64."""
        x = torch.as_tensor(x, dtype=torch.float64)
        means = torch.as_tensor(self.means, device=x.device)
        sq = torch.cdist(x, means).pow(2)
        log_w = torch.as_tensor(np.log(self.weights), device=x.device)
        log_norm = -0.5 * self.dim * math.log(2 * math.pi * self.std**2)
        return torch.logsumexp(log_w - 0.5 * sq / self.std**2, dim=1) + log_norm


def eight_gaussians(scale: float = 5.0, std: float = math.sqrt(0.1)) -> GaussianMixture:
    """Eight modes on a circle of radius ``scale`` (torchcfm's scaling: 5, variance 0.1)."""
    angles = np.arange(8) * 2 * np.pi / 8
    return GaussianMixture(scale * np.stack([np.cos(angles), np.sin(angles)], 1), std)


def twenty_five_gaussians(spacing: float = 2.0, std: float = 0.1) -> GaussianMixture:
    """A 5 x 5 grid of modes, ``spacing`` apart, centred at the origin."""
    grid = (np.arange(5) - 2) * spacing
    means = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    return GaussianMixture(means, std)


@dataclass
class MixtureParams:
    """The ``gmm`` data set: ``n_components`` isotropic modes at ``radius`` from the origin in
    R^dim (any dimension, exact log-density)."""

    dim: int = 2
    n_components: int = 8
    radius: float = 4.0
    std: float = 0.5
    mixture_seed: int = 0

    def __post_init__(self) -> None:
        if self.dim < 1 or self.n_components < 1:
            raise ValueError("dim and n_components must be >= 1")
        check_range("radius", self.radius, 0.0, MAX_DATA_SCALE)
        check_range("std", self.std, 0.0, MAX_DATA_SCALE, low_open=True)


@register_dataset("gmm", params=MixtureParams)
def random_mixture(p: MixtureParams) -> GaussianMixture:
    """Means drawn uniformly on the sphere of radius ``p.radius`` (fixed by ``mixture_seed``)."""
    rng = np.random.default_rng(p.mixture_seed)
    directions = rng.standard_normal((p.n_components, p.dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return GaussianMixture(p.radius * directions, p.std)


register_dataset("8gaussians")(lambda _params: eight_gaussians())
register_dataset("25gaussians")(lambda _params: twenty_five_gaussians())
