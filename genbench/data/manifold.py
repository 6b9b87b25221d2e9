"""A curved ``intrinsic_dim``-dimensional manifold embedded in ``R^ambient_dim``.

Coordinates ``u ~ U[-1, 1]^k`` (``k = intrinsic_dim``, the d* of the dimension study) are
mapped into ``R^D`` (``D = ambient_dim``) by one of two smooth embeddings, fixed by
``embed_seed``:

- ``features`` (default): the features ``[u, sin(pi u), cos(pi u)]`` through a random
  isometry: a product of ``k`` curves, spanning exactly ``3k`` linear directions of ``R^D``
  (a PCA encoder of latent dimension ``3k`` is lossless; needs ``D >= 3k``).
- ``mlp``: a random one-hidden-layer network ``x = scale * tanh(u A + b) G``, ``A`` (k x
  width) with ``N(0, gain^2)`` entries, ``b ~ U[-1, 1]``, ``G`` (width x D) Gaussian with
  variance ``1/width``: curved in every direction it reaches, spanning ``min(width, D)``
  linear directions. ``G G^T`` is ``(D / width) I`` up to fluctuations of relative size
  ``sqrt(width / D)``: at D near the width the map distorts the shape, as D grows it tends
  to a copy scaled by ``sqrt(D / width)``. Compare distances across D by their ratio to the
  floor, which is scale-free.

Either way the data have intrinsic dimension ``k`` however large ``D`` is: the setting of the
dimension claims (Oko et al. 2023, Section 5, for linear subspaces; the latent Schrödinger
bridge analysis of Jiao et al., arXiv 2404.13309, in the latent dimension).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genbench.core.config import MAX_DATA_SCALE, check_range
from genbench.data.registry import register_dataset

__all__ = ["EMBEDDINGS", "EmbeddedManifold", "ManifoldParams"]

EMBEDDINGS = ("features", "mlp")


@dataclass
class ManifoldParams:
    """The ``manifold`` data set: a curved ``intrinsic_dim``-dimensional manifold in
    R^ambient_dim."""

    intrinsic_dim: int = 2
    ambient_dim: int = 16
    embed_seed: int = 0
    noise: float = 0.0
    scale: float = 2.0
    embedding: str = "features"  # features (isometry of [u, sin, cos]) | mlp (random tanh net)
    width: int = 16  # mlp: hidden width (the data span min(width, ambient_dim) directions)
    gain: float = 1.5  # mlp: std of the first layer's weights (larger: more curved)

    def __post_init__(self) -> None:
        if self.intrinsic_dim < 1:
            raise ValueError(f"intrinsic_dim must be >= 1, got {self.intrinsic_dim}")
        if self.embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {self.embedding!r}")
        if self.embedding == "features" and self.ambient_dim < 3 * self.intrinsic_dim:
            raise ValueError(
                f"ambient_dim must be >= 3 * intrinsic_dim = {3 * self.intrinsic_dim} "
                f"to embed the curved features, got {self.ambient_dim}"
            )
        check_range("noise", self.noise, 0.0, MAX_DATA_SCALE)
        check_range("scale", self.scale, 0.0, MAX_DATA_SCALE, low_open=True)
        if self.embedding == "mlp" and not self.intrinsic_dim < min(self.width,
                                                                    self.ambient_dim):
            raise ValueError(
                f"the mlp embedding needs intrinsic_dim < min(width, ambient_dim) = "
                f"{min(self.width, self.ambient_dim)}, got intrinsic_dim={self.intrinsic_dim}"
            )
        check_range("gain", self.gain, 0.0, MAX_DATA_SCALE, low_open=True)


@register_dataset("manifold", params=ManifoldParams)
class EmbeddedManifold:
    def __init__(self, params: ManifoldParams):
        self.params = params
        rng = np.random.default_rng(params.embed_seed)
        k, d = params.intrinsic_dim, params.ambient_dim
        if params.embedding == "features":
            q, _ = np.linalg.qr(rng.standard_normal((d, 3 * k)))
            self.basis = q.T  # (3k, D), orthonormal rows: an isometry of feature space
        else:
            self.weight = params.gain * rng.standard_normal((k, params.width))
            self.bias = rng.uniform(-1.0, 1.0, params.width)
            self.basis = rng.standard_normal((params.width, d)) / np.sqrt(params.width)

    def embed(self, u: np.ndarray) -> np.ndarray:
        """The embedding of coordinates ``u`` in ``[-1, 1]^k``, noise-free: ``(n, D)``."""
        p = self.params
        if p.embedding == "features":
            feats = np.concatenate([u, np.sin(np.pi * u), np.cos(np.pi * u)], axis=1)
        else:
            feats = np.tanh(u @ self.weight + self.bias)
        return p.scale * feats @ self.basis

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        x = self.embed(rng.uniform(-1.0, 1.0, (n, p.intrinsic_dim)))
        if p.noise > 0:
            x = x + p.noise * rng.standard_normal(x.shape)
        return x
