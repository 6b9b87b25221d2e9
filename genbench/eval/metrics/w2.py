"""The 2-Wasserstein distance between samples, with POT.

``w2`` is exact (network simplex, ``ot.emd2`` on squared Euclidean costs, CPU) up to
``max_exact`` points per side (10,000 by default: ~25 s and 0.8 GB there); beyond it one of
two approximations through POT's torch backend, on the GPU when there is one
(``large_n_method="auto"`` picks Sinkhorn with a GPU and sliced without, because on a CPU
Sinkhorn costs 25-40x the exact solver at equal n; benchmarks/results/perf.md):

- ``sinkhorn``: the square root of the debiased Sinkhorn divergence
  ``S(x, y) = OT_eps(x, y) - (OT_eps(x, x) + OT_eps(y, y)) / 2`` with the transport cost
  ``<P_eps, C>`` of the entropic plan. The entropic blur cancels to first order, so far from
  the floor it agrees with exact W2 to a few per cent (``tests/test_metrics.py`` holds it to
  5 %); close to the floor it reads *lower* than the plug-in W2, because debiasing also
  removes part of the sample noise. Cost: three dense ``n x m`` matrices and a few hundred
  log-domain iterations: seconds on a GPU, minutes on a CPU at ``n = 5000``.
- ``sliced``: the sliced W2, ``sqrt(E_theta W2^2(theta#x, theta#y))`` over random unit
  directions. A different distance: never above W2, and for a pure shift in ``d``
  dimensions ``sqrt(d)`` times smaller. Cheap at any size (sorting); compare sliced values
  only with sliced values (the harness computes the floor with the same method).

The method used is returned with every value. ``w2_gaussian`` is the closed form between
Gaussians, the tests' anchor.

References:
    Flamary et al., "POT: Python Optimal Transport", JMLR 2021.
    Fournier, Guillin, "On the rate of convergence in Wasserstein distance of the empirical
    measure", PTRF 2015 (why the sample-noise floor must be reported beside every value).
    Feydy et al., "Interpolating between Optimal Transport and MMD using Sinkhorn
    Divergences", AISTATS 2019.
    Bonneel, Rabin, Peyré, Pfister, "Sliced and Radon Wasserstein Barycenters of Measures",
    JMIV 2015.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import ot
import scipy.linalg
import torch
from torch import Tensor

__all__ = ["LARGE_N_METHODS", "W2_METHODS", "sliced_w2", "w2", "w2_gaussian"]

W2_METHODS = ("exact", "sinkhorn", "sliced")
LARGE_N_METHODS = ("auto", "sinkhorn", "sliced")


def _check_pair(x: Tensor | np.ndarray, y: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    """Both samples as float64 tensors on one device (CUDA when either is, or is available)."""
    out = []
    for name, a in (("x", x), ("y", y)):
        t = a.detach() if isinstance(a, Tensor) else torch.as_tensor(np.asarray(a, float))
        if t.ndim != 2 or len(t) == 0:
            raise ValueError(f"{name} must have shape (n, d) with n >= 1, got {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
        out.append(t.double())
    if out[0].shape[1] != out[1].shape[1]:
        raise ValueError(
            f"x and y must share their dimension, got {tuple(out[0].shape)} and "
            f"{tuple(out[1].shape)}"
        )
    return out[0], out[1]


def _approx_device(*tensors: Tensor) -> torch.device:
    for t in tensors:
        if t.device.type == "cuda":
            return t.device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def w2(
    x: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    *,
    method: str = "auto",
    max_exact: int = 10_000,
    large_n_method: str = "auto",
    reg: float = 0.01,
    n_projections: int = 500,
    seed: int = 0,
) -> tuple[float, str]:
    """W2 between the empirical measures of ``x`` (n, d) and ``y`` (m, d): ``(value, method)``.

    ``method="auto"`` is exact while ``max(n, m) <= max_exact`` and ``large_n_method``
    beyond (``"auto"``: sinkhorn on a GPU, sliced on a CPU). ``reg`` (Sinkhorn) is relative
    to the mean squared cost, so it means the same at every data scale; ``n_projections`` and
    ``seed`` fix the sliced directions.
    """
    if method not in ("auto", *W2_METHODS):
        raise ValueError(f"unknown W2 method {method!r}; choose auto or one of {W2_METHODS}")
    if large_n_method not in LARGE_N_METHODS:
        raise ValueError(
            f"large_n_method must be one of {LARGE_N_METHODS}, got {large_n_method!r}"
        )
    xt, yt = _check_pair(x, y)
    if method == "auto":
        if max(len(xt), len(yt)) <= max_exact:
            method = "exact"
        elif large_n_method == "auto":
            on_gpu = _approx_device(xt, yt).type == "cuda"
            method = "sinkhorn" if on_gpu else "sliced"
        else:
            method = large_n_method
    if method == "exact":
        xa, ya = xt.cpu().numpy(), yt.cpu().numpy()
        value = ot.emd2(ot.unif(len(xa)), ot.unif(len(ya)), ot.dist(xa, ya),
                        numItermax=10_000_000)
        return math.sqrt(max(float(value), 0.0)), method
    device = _approx_device(xt, yt)
    xt, yt = xt.to(device), yt.to(device)
    if method == "sliced":
        return sliced_w2(xt, yt, n_projections=n_projections, seed=seed), method
    if reg <= 0:
        raise ValueError(f"the Sinkhorn reg must be positive, got {reg}")
    return _sinkhorn_w2(xt, yt, reg), method


def sliced_w2(x: Tensor, y: Tensor, *, n_projections: int, seed: int) -> float:
    """Sliced W2 with directions from a private generator (POT's ``seed`` would reseed torch)."""
    if n_projections < 1:
        raise ValueError(f"n_projections must be >= 1, got {n_projections}")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    dirs = torch.randn(x.shape[1], n_projections, generator=gen, dtype=torch.float64)
    dirs = (dirs / dirs.norm(dim=0, keepdim=True)).to(x.device)
    return float(ot.sliced_wasserstein_distance(x, y, projections=dirs, p=2))


def _sinkhorn_w2(x: Tensor, y: Tensor, reg: float) -> float:
    """sqrt of the debiased Sinkhorn divergence with ``eps = reg * mean squared cost``."""
    eps = reg * float(ot.dist(x, y).mean())
    # The marginal error is a norm over n entries of size ~1/n: scale the threshold to match.
    threshold = 1e-3 / math.sqrt(max(len(x), len(y)))

    def transport_cost(a: Tensor, b: Tensor) -> Tensor:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = ot.sinkhorn2(ot.unif(len(a), type_as=a), ot.unif(len(b), type_as=b),
                                 ot.dist(a, b), eps, method="sinkhorn_log",
                                 numItermax=20_000, stopThr=threshold)
        if any("converge" in str(w.message) for w in caught):
            warnings.warn(f"Sinkhorn W2 did not converge (n={len(a)}, eps={eps:.3g}); "
                          "raise eval.sinkhorn_reg or use large_n_method=sliced", stacklevel=3)
        return value

    div = transport_cost(x, y) - 0.5 * (transport_cost(x, x) + transport_cost(y, y))
    return math.sqrt(max(float(div), 0.0))


def w2_gaussian(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> float:
    """Closed-form W2 between N(m1, s1) and N(m2, s2)."""
    m1, m2 = np.atleast_1d(np.asarray(m1, float)), np.atleast_1d(np.asarray(m2, float))
    s1, s2 = np.atleast_2d(np.asarray(s1, float)), np.atleast_2d(np.asarray(s2, float))
    root2 = scipy.linalg.sqrtm(s2)
    cross = scipy.linalg.sqrtm(root2 @ s1 @ root2)
    value = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * np.real(cross))
    return math.sqrt(max(float(value), 0.0))
