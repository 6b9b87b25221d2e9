"""Convergence rates: power-law fits with confidence intervals, and the theory's exponents.

An error that decays like ``C n^slope`` is a line in log-log coordinates: :func:`fit_power_law`
regresses ``log value`` on ``log n`` by least squares over every (n, value) point, one per seed
and sample size, and gives the slope a Student-t interval (``N - 2`` degrees of freedom).
The interval treats the points as independent; seeds of one sweep share the evaluation set,
so read it as a measure of seed-to-seed scatter, not of every source of error.

The exponents the rate study draws beside the fits. Each is a *bound* proved under
assumptions the toy data sets do not all meet (listed per function); a line is drawn only
against the metric its theorem is about, and only with its source quoted here and in
docs/rates.md. ``d`` is the dimension the generator works in (the latent dimension), ``s``
the target's smoothness: a knob, since the theory assumes it and data do not reveal it.

- :func:`oko_tv_exponent`, :func:`oko_w1_exponent`: Oko, Akiyama, Suzuki (ICML 2023), the
  rates of a diffusion model trained on ``n`` samples, in TV and in W1 (drawn against the TV
  and W1 fits only, never against W2).
- :func:`empirical_measure_exponent`: Fournier and Guillin (PTRF 2015, Theorem 1), the rate of
  the empirical measure of ``n`` samples in ``W_p``: the memoriser's line (W1 and W2 fits).

No exponent is drawn for the latent Schrödinger bridge (Jiao et al., arXiv 2404.13309): no
rate in ``n`` from that paper has been read off its theorem in this project (a
``-1/(6(d*+3))`` once drawn here had no source and was removed).

References:
    Oko, Akiyama, Suzuki, "Diffusion Models are Minimax Optimal Distribution Estimators",
    ICML 2023 (arXiv 2303.01861).
    Fournier, Guillin, "On the rate of convergence in Wasserstein distance of the empirical
    measure", Probab. Theory Relat. Fields 162 (2015), Theorem 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "FOURNIER_GUILLIN_ASSUMPTIONS",
    "OKO_ASSUMPTIONS",
    "PowerLawFit",
    "empirical_measure_exponent",
    "fit_power_law",
    "memoriser_exponents",
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


OKO_ASSUMPTIONS = (
    "density supported on [-1, 1]^d, bounded above and below there (C^-1 <= p <= C), in the "
    "Besov space B^s_{p,q} with extra smoothness near the boundary; score network from their "
    "sparse ReLU class, empirical score-matching minimiser, early stopping; rates up to log "
    "factors, n = the number of i.i.d. training samples")
FOURNIER_GUILLIN_ASSUMPTIONS = (
    "mu_n the empirical measure of n i.i.d. draws of mu on R^d, mu with a finite moment of "
    "order q > p (q large enough that the moment term n^(-(q-p)/q) is negligible); an upper "
    "bound on E W_p^p(mu_n, mu), hence on E W_p by Jensen; distance to mu itself, not to a "
    "second sample")


def oko_tv_exponent(smoothness: float, dim: float) -> float:
    """``-s / (2s + d)``: TV rate of a diffusion model, Oko, Akiyama, Suzuki (ICML 2023).

    Source: Oko, Akiyama, Suzuki, "Diffusion Models are Minimax Optimal Distribution
    Estimators", ICML 2023 (arXiv 2303.01861), the TV estimation theorem (Section 4):
    ``E[TV(p, p_hat)] = O~(n^(-s/(2s+d)))``, the minimax rate for Besov densities, ``n`` the
    number of training samples. Assumptions: :data:`OKO_ASSUMPTIONS`. With data on a
    ``d'``-dimensional linear subspace the paper's low-dimensional extension (Section 5)
    replaces ``d`` by ``d'``. An upper bound for the worst density of the class.
    """
    _check(dim, smoothness)
    return -smoothness / (2 * smoothness + dim)


def oko_w1_exponent(smoothness: float, dim: float) -> float:
    """``-(s + 1) / (2s + d)``: W1 rate of a diffusion model, Oko, Akiyama, Suzuki (ICML 2023).

    Source: Oko, Akiyama, Suzuki, "Diffusion Models are Minimax Optimal Distribution
    Estimators", ICML 2023 (arXiv 2303.01861), the W1 estimation theorem (Section 4, with
    their switching of score networks across time): ``E[W1(p, p_hat)] = O~(n^(-(s+1-delta)
    /(2s+d)))`` for any ``delta > 0`` (drawn with ``delta = 0``), ``n`` the number of training
    samples. Assumptions: :data:`OKO_ASSUMPTIONS`. A W1 rate, not a W2 one: never drawn
    against W2. At ``d = 2`` it is ``-1/2`` for every ``s``.
    """
    _check(dim, smoothness)
    return -(smoothness + 1) / (2 * smoothness + dim)


def empirical_measure_exponent(dim: float, order: int = 2) -> float:
    """``-1 / max(d, 2p)``: the empirical measure's ``W_p`` rate, Fournier and Guillin (2015).

    Source: Fournier, Guillin, "On the rate of convergence in Wasserstein distance of the
    empirical measure", PTRF 162 (2015), Theorem 1: ``E W_p^p(mu_n, mu) <= C (n^(-1/2) if
    p > d/2; n^(-1/2) log(1+n) if p = d/2; n^(-p/d) if p < d/2)`` plus a moment term, so
    ``E W_p <= (E W_p^p)^(1/p) ~ n^(-1/max(d, 2p))`` (a log factor at ``d = 2p``): ``n^(-1/d)``
    for ``d > 2p``. Assumptions: :data:`FOURNIER_GUILLIN_ASSUMPTIONS`. An upper bound: for a
    smooth density in ``d = 2`` the true W1 and W2 rates are ``sqrt(log n / n)``
    (Ajtai-Komlós-Tusnády), steeper than the ``-1/4`` this gives for W2.
    """
    _check(dim)
    if order < 1:
        raise ValueError(f"the order p of W_p must be >= 1, got {order}")
    return -1.0 / max(dim, 2.0 * order)


def _order(metric: str) -> int | None:
    return {"_w1": 1, "_w2": 2}.get(metric[-3:])


def theory_exponents(metric: str, dim: float, smoothness: float) -> dict[str, float]:
    """The generator's theory lines for a fitted ``metric``: Oko et al.'s TV exponent for
    ``*_tv``, their W1 exponent for ``*_w1``, none for ``*_w2`` (no sourced W2 rate)."""
    if metric.endswith("_tv"):
        return {f"Oko TV -s/(2s+d), s={smoothness:g}": oko_tv_exponent(smoothness, dim)}
    if metric.endswith("_w1"):
        return {f"Oko W1 -(s+1)/(2s+d), s={smoothness:g}": oko_w1_exponent(smoothness, dim)}
    return {}


def memoriser_exponents(metric: str, dim: float) -> dict[str, float]:
    """The memoriser's theory line for ``*_w1`` / ``*_w2``: Fournier-Guillin's ``W_p`` bound."""
    order = _order(metric)
    if order is None:
        return {}
    return {f"Fournier-Guillin W{order} -1/max(d,{2 * order})":
            empirical_measure_exponent(dim, order)}
