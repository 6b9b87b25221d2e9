"""A curved ``intrinsic_dim``-dimensional manifold embedded in ``R^ambient_dim``.

Coordinates ``u ~ U[-1, 1]^k`` are lifted to the features ``[u, sin(pi u), cos(pi u)]`` and
mapped by a fixed random isometry (seeded by ``embed_seed``) into ``R^D``: the data has
intrinsic dimension ``k`` however large ``D`` is, which is the setting where diffusion rates
depend on ``k`` rather than ``D`` (Oko et al. 2023).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genbench.core.config import MAX_DATA_SCALE, check_range
from genbench.data.registry import register_dataset

__all__ = ["EmbeddedManifold", "ManifoldParams"]


@dataclass
class ManifoldParams:
    """The ``manifold`` data set: a curved ``intrinsic_dim``-dimensional manifold in
    R^ambient_dim."""

    intrinsic_dim: int = 2
    ambient_dim: int = 16
    embed_seed: int = 0
    noise: float = 0.0
    scale: float = 2.0

    def __post_init__(self) -> None:
        if self.intrinsic_dim < 1:
            raise ValueError(f"intrinsic_dim must be >= 1, got {self.intrinsic_dim}")
        if self.ambient_dim < 3 * self.intrinsic_dim:
            raise ValueError(
                f"ambient_dim must be >= 3 * intrinsic_dim = {3 * self.intrinsic_dim} "
                f"to embed the curved features, got {self.ambient_dim}"
            )
        check_range("noise", self.noise, 0.0, MAX_DATA_SCALE)
        check_range("scale", self.scale, 0.0, MAX_DATA_SCALE, low_open=True)


@register_dataset("manifold", params=ManifoldParams)
class EmbeddedManifold:
    def __init__(self, params: ManifoldParams):
        self.params = params
        rng = np.random.default_rng(params.embed_seed)
        q, _ = np.linalg.qr(rng.standard_normal((params.ambient_dim, 3 * params.intrinsic_dim)))
        self.basis = q.T  # (3k, D), orthonormal rows: an isometry of feature space

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        u = rng.uniform(-1.0, 1.0, (n, p.intrinsic_dim))
        feats = np.concatenate([u, np.sin(np.pi * u), np.cos(np.pi * u)], axis=1)
        x = p.scale * feats @ self.basis
        if p.noise > 0:
            x = x + p.noise * rng.standard_normal(x.shape)
        return x
