"""Maximum mean discrepancy with a Gaussian (RBF) kernel and the median bandwidth.

``k(a, b) = exp(-|a - b|^2 / (2 h^2))``. The bandwidth ``h`` is the median pairwise distance
of the *target* sample (the median heuristic), so every solver scored on the same target is
scored with the same kernel. ``mmd`` returns ``sqrt(max(MMD^2, 0))`` of the plug-in
(V-statistic) estimate by default: always >= 0, biased up by sample noise like plug-in W2,
and read the same way, beside its floor (the same statistic between two target samples).
``unbiased=True`` gives the U-statistic (unbiased for MMD^2, may be negative; its square
root is taken of the positive part). Samples larger than ``max_n`` are subsampled.

References:
    Gretton, Borgwardt, Rasch, Schölkopf, Smola, "A Kernel Two-Sample Test", JMLR 2012.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["median_bandwidth", "mmd", "mmd2"]


def _as_tensor(x: Tensor | np.ndarray, name: str) -> Tensor:
    t = x.detach() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x, float))
    if t.ndim != 2 or len(t) < 2:
        raise ValueError(f"{name} must have shape (n, d) with n >= 2, got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t.double()


def _subsample(x: Tensor, max_n: int, gen: torch.Generator) -> Tensor:
    if len(x) <= max_n:
        return x
    return x[torch.randperm(len(x), generator=gen)[:max_n].to(x.device)]


def median_bandwidth(target: Tensor | np.ndarray, *, max_n: int = 1000, seed: int = 0) -> float:
    """The median pairwise distance among (at most ``max_n``) target points."""
    t = _subsample(_as_tensor(target, "target"), max_n,
                   torch.Generator().manual_seed(seed))
    dist = torch.cdist(t, t)
    upper = dist[torch.triu_indices(len(t), len(t), offset=1, device=t.device).unbind()]
    h = float(upper.median())
    if h <= 0:
        raise ValueError("median bandwidth is 0: the target sample has (mostly) repeated points")
    return h


def mmd2(x: Tensor, y: Tensor, bandwidth: float, *, unbiased: bool = False) -> float:
    """MMD^2 between samples ``x`` and ``y`` for the RBF kernel of width ``bandwidth``."""
    gamma = 1.0 / (2.0 * bandwidth**2)
    kxx = torch.exp(-gamma * torch.cdist(x, x).pow(2))
    kyy = torch.exp(-gamma * torch.cdist(y, y).pow(2))
    kxy = torch.exp(-gamma * torch.cdist(x, y).pow(2))
    n, m = len(x), len(y)
    if unbiased:
        sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
        syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    else:
        sxx, syy = kxx.mean(), kyy.mean()
    return float(sxx + syy - 2 * kxy.mean())


def mmd(
    gen: Tensor | np.ndarray,
    target: Tensor | np.ndarray,
    *,
    bandwidth: float | None = None,
    unbiased: bool = False,
    max_n: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """``(MMD, bandwidth)`` between ``gen`` and ``target``; bandwidth None: the median rule."""
    if max_n < 2:
        raise ValueError(f"max_n must be >= 2, got {max_n}")
    x, y = _as_tensor(gen, "gen"), _as_tensor(target, "target")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"gen and target must share their dimension, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    if bandwidth is None:
        bandwidth = median_bandwidth(y, seed=seed)
    elif bandwidth <= 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")
    gen_ = torch.Generator().manual_seed(seed)
    x, y = _subsample(x, max_n, gen_), _subsample(y.to(x.device), max_n, gen_)
    value = mmd2(x, y, bandwidth, unbiased=unbiased)
    return math.sqrt(max(value, 0.0)), bandwidth
