"""Convergence rates: power-law fits with confidence intervals, and the theory's exponents.

An error that decays like ``C n^slope`` is a line in log-log coordinates: :func:`fit_power_law`
regresses ``log value`` on ``log n`` by least squares over every (n, value) point, one per seed
and sample size, and gives the slope a Student-t interval (``N - 2`` degrees of freedom).
The interval treats the points as independent; seeds of one sweep share the evaluation set,
so read it as a measure of seed-to-seed scatter, not of every source of error.

The exponents the rate study draws beside the fits (``d`` is the dimension the generator
works in, ``s`` the target's smoothness, a knob: the theory assumes it, data do not reveal it):

- Oko et al.: diffusion models reach the minimax TV rate ``n^(-s/(2s+d))`` (and W1
  ``n^(-(s+1)/(2s+d))``), ``d`` the intrinsic dimension when the data lie on a subspace.
- Latent Schrödinger bridge (Jiao et al., as reported; unverified): W2 ``n^(-1/(6(d*+3)))``
  in the number of latent samples, ``d*`` the latent dimension.
- The empirical measure itself (Fournier and Guillin): plug-in W2 ``n^(-1/max(d, 4))``
  (up to a log factor at d = 4): the rate of a memoriser, and of the floor.

References:
    Oko, Akiyama, Suzuki, "Diffusion Models are Minimax Optimal Distribution Estimators",
    ICML 2023.
    Jiao, Kang, Lin, Liu, Zuo, "Latent Schrödinger Bridge Diffusion Model for Generative
    Learning", arXiv 2404.13309.
    Fournier, Guillin, "On the rate of convergence in Wasserstein distance of the empirical
    measure", PTRF 2015.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "PowerLawFit",
    "empirical_w2_exponent",
    "fit_power_law",
    "latent_sb_w2_exponent",
    "oko_tv_exponent",
    "oko_w1_exponent",
    "theory_exponents",
]


@dataclass(frozen=True)
class PowerLawFit:
    """``value ~ exp(intercept) * n^slope`` with a confidence interval on the slope."""

    slope: float
    intercept: float
    slope_low: float
    slope_high: float
    stderr: float
    r2: float
    n_points: int
    n_dropped: int
    confidence: float

    def covers(self, slope: float) -> bool:
        """Whether ``slope`` lies in the confidence interval."""
        return self.slope_low <= slope <= self.slope_high


def fit_power_law(n: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray, *,
                  confidence: float = 0.95) -> PowerLawFit:
    """Least-squares fit of ``log values = intercept + slope * log n``.

    Points whose value is not positive and finite (a TV estimate clipped at 0, a failed job)
    cannot be logged: they are dropped and counted in ``n_dropped``. Needs at least three
    remaining points at two or more distinct ``n``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    n_arr, v_arr = np.asarray(n, float).ravel(), np.asarray(values, float).ravel()
    if n_arr.shape != v_arr.shape:
        raise ValueError(f"n and values must have the same length, got {n_arr.size} and "
                         f"{v_arr.size}")
    if np.any(~np.isfinite(n_arr)) or np.any(n_arr <= 0):
        raise ValueError("sample sizes n must be positive and finite")
    keep = np.isfinite(v_arr) & (v_arr > 0)
    x, y = np.log(n_arr[keep]), np.log(v_arr[keep])
    if x.size < 3 or np.unique(x).size < 2:
        raise ValueError(
            f"a rate needs at least 3 positive values at 2 or more sample sizes; got "
            f"{x.size} usable point(s) at {np.unique(x).size} size(s)"
        )
    res = stats.linregress(x, y)
    if x.size > 2 and np.isfinite(res.stderr):
        half = float(stats.t.ppf(0.5 + confidence / 2, df=x.size - 2)) * float(res.stderr)
    else:
        half = math.inf
    return PowerLawFit(slope=float(res.slope), intercept=float(res.intercept),
                       slope_low=float(res.slope) - half, slope_high=float(res.slope) + half,
                       stderr=float(res.stderr), r2=float(res.rvalue**2), n_points=int(x.size),
                       n_dropped=int((~keep).sum()), confidence=confidence)


def _check(dim: float, smoothness: float | None = None) -> None:
    if dim <= 0:
        raise ValueError(f"dimension must be positive, got {dim}")
    if smoothness is not None and smoothness <= 0:
        raise ValueError(f"smoothness must be positive, got {smoothness}")


def oko_tv_exponent(smoothness: float, dim: float) -> float:
    """``-s / (2s + d)``: the minimax TV rate reached by diffusion models (Oko et al.)."""
    _check(dim, smoothness)
    return -smoothness / (2 * smoothness + dim)


def oko_w1_exponent(smoothness: float, dim: float) -> float:
    """``-(s + 1) / (2s + d)``: Oko et al.'s W1 rate."""
    _check(dim, smoothness)
    return -(smoothness + 1) / (2 * smoothness + dim)


def latent_sb_w2_exponent(latent_dim: float) -> float:
    """``-1 / (6 (d* + 3))``: the latent Schrödinger bridge W2 rate (Jiao et al., reported)."""
    _check(latent_dim)
    return -1.0 / (6 * (latent_dim + 3))


def empirical_w2_exponent(dim: float) -> float:
    """``-1 / max(d, 4)``: plug-in W2 of the empirical measure (Fournier and Guillin)."""
    _check(dim)
    return -1.0 / max(dim, 4.0)


def theory_exponents(metric: str, dim: float, smoothness: float) -> dict[str, float]:
    """The theoretical exponents to draw beside a fitted ``metric`` (``*_w2`` or ``*_tv``)."""
    if metric.endswith("_tv"):
        return {f"Oko TV -s/(2s+d), s={smoothness:g}": oko_tv_exponent(smoothness, dim)}
    if metric.endswith("_w2"):
        return {
            "latent SB W2 -1/(6(d*+3))": latent_sb_w2_exponent(dim),
            f"Oko W1 -(s+1)/(2s+d), s={smoothness:g}": oko_w1_exponent(smoothness, dim),
            "empirical W2 -1/max(d,4)": empirical_w2_exponent(dim),
        }
    return {}
