"""The 1-Wasserstein distance between samples, with POT: the metric of Oko et al.'s W1 rate.

``W1(mu, nu) = min_P sum_ij P_ij |x_i - y_j|`` over couplings ``P`` of the two empirical
measures, with the *Euclidean* cost (not squared): ``ot.emd2(a, b, ot.dist(x, y,
metric="euclidean"))``, exact by the network simplex up to ``max_exact`` points per side.
Beyond it, the sliced W1 ``E_theta W1(theta#x, theta#y)`` over random unit directions
(sorting; a different and smaller distance, recorded as ``"sliced"``: compare sliced values
only with sliced values).

Closed forms the tests hold it to: in 1-D, between two samples of equal size ``n``,
``W1 = sum_i |x_(i) - y_(i)| / n`` (sorted samples: the monotone coupling is optimal for
every convex cost); a pure shift ``y = x + v`` gives ``W1 = |v|`` (the identity coupling
moves each point by ``|v|``, and ``W1 >= |E y - E x|`` by Jensen).

References:
    Flamary et al., "POT: Python Optimal Transport", JMLR 2021.
    Villani, "Optimal Transport, Old and New", 2009, Remark 6.5 (Kantorovich-Rubinstein).
    Oko, Akiyama, Suzuki, "Diffusion Models are Minimax Optimal Distribution Estimators",
    ICML 2023 (the W1 rate drawn by the rate study, genbench.report.rates.fit).
"""

from __future__ import annotations

import math

import numpy as np
import ot
import torch
from torch import Tensor

__all__ = ["W1_METHODS", "w1"]

W1_METHODS = ("exact", "sliced")


def _as_array(name: str, a: Tensor | np.ndarray) -> np.ndarray:
    arr = a.detach().cpu().double().numpy() if isinstance(a, Tensor) else np.asarray(a, float)
    if arr.ndim != 2 or len(arr) == 0:
        raise ValueError(f"{name} must have shape (n, d) with n >= 1, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def w1(x: Tensor | np.ndarray, y: Tensor | np.ndarray, *, method: str = "auto",
       max_exact: int = 10_000, n_projections: int = 500, seed: int = 0) -> tuple[float, str]:
    """W1 (Euclidean cost) between the empirical measures of ``x`` (n, d) and ``y`` (m, d):
    ``(value, method)``; ``method="auto"`` is exact up to ``max_exact`` points per side,
    sliced beyond."""
    if method not in ("auto", *W1_METHODS):
        raise ValueError(f"unknown W1 method {method!r}; choose auto or one of {W1_METHODS}")
    xa, ya = _as_array("x", x), _as_array("y", y)
    if xa.shape[1] != ya.shape[1]:
        raise ValueError(f"x and y must share their dimension, got {xa.shape} and {ya.shape}")
    if method == "auto":
        method = "exact" if max(len(xa), len(ya)) <= max_exact else "sliced"
    if method == "exact":
        cost = ot.dist(xa, ya, metric="euclidean")
        value = ot.emd2(ot.unif(len(xa)), ot.unif(len(ya)), cost, numItermax=10_000_000)
        return max(float(value), 0.0), method
    if n_projections < 1:
        raise ValueError(f"n_projections must be >= 1, got {n_projections}")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    dirs = torch.randn(xa.shape[1], n_projections, generator=gen, dtype=torch.float64).numpy()
    dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
    value = ot.sliced_wasserstein_distance(xa, ya, projections=dirs, p=1)
    return float(value) if math.isfinite(float(value)) else math.nan, method
