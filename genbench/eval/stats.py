"""Uncertainty for every headline number: intervals, paired tests, Holm, rank groups.

Which resampling, and why
-------------------------
Two sources of noise sit in a job's score: the finite test set and the finite generated
sample (plus, across seeds, training). They are handled differently by kind of score.

* **Means over points** (cross-entropy ``E_q[-log p]``, NLL, precision/recall/coverage
  indicators, mode-assignment fractions): a *percentile bootstrap over points*
  (:func:`bootstrap_mean_interval`; Efron & Tibshirani 1993, ch. 13). The statistic is a
  smooth functional of the empirical law, so the n-out-of-n bootstrap is consistent.
* **Plug-in optimal-transport scores (W2) and other non-smooth distances**: *no bootstrap
  over test points*. Resampling with replacement duplicates points; plug-in W2 between a
  resample and a sample is then biased (ties can be matched at zero cost, and the
  ``n^(-1/d)`` sample-noise bias of the plug-in estimator changes with the number of distinct
  points), and the n-out-of-n bootstrap of the empirical Wasserstein distance is
  inconsistent at the null (Sommerfeld & Munk, JRSS-B 2018, Thm. 3 and Sec. 3.3). The
  m-out-of-n bootstrap is consistent but needs the convergence rate to rescale, which is
  ``n^(-1/d)`` only under assumptions we cannot check per data set. We therefore use
  **repeated independent draws**: the floor is ``R`` independent exact target draws scored
  against the same test points (:func:`floor_summary`, mean +- sd; resplits for finite data
  sets), and a job is "worse than an exact draw" when its score exceeds the floor's
  one-sided prediction bound (:func:`worse_than_reference_p`). A job's own interval uses the
  floor's sd as its draw-to-draw sd (:func:`draw_interval`): *an approximation*, exact when
  the solver samples the target, conservative-to-neutral near it.
* **Across seeds** (the leaderboard): a Student-t interval of the mean over seeds
  (:func:`seed_mean_interval`), and paired comparisons on the same test points and seeds
  (:func:`paired_permutation_test`, a sign-flip test, exact when all ``2^n`` flips are
  enumerated; Good, *Permutation Tests*, 2005, Sec. 3.3), corrected by Holm (1979).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

__all__ = ["TRANSFORMS", "FloorSummary", "Interval", "RankGroups", "bootstrap_mean_interval",
           "combined_rank_p", "draw_interval", "floor_ratio_interval", "floor_summary", "holm",
           "paired_noise_test", "paired_permutation_test", "rank_groups", "seed_mean_interval",
           "worse_than_reference_p"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval at ``confidence`` (NaN bounds: undefined)."""

    estimate: float
    low: float
    high: float
    confidence: float

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class FloorSummary:
    """Mean and sample sd (ddof=1) of ``n`` independent reference-draw scores."""

    mean: float
    sd: float
    n: int


def _vector(x: np.ndarray | Sequence[float], name: str, min_len: int = 1) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or len(a) < min_len:
        raise ValueError(f"{name} must be a 1-D array with at least {min_len} value(s), "
                         f"got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _check_level(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def bootstrap_mean_interval(per_point: np.ndarray, *, confidence: float = 0.95,
                            n_boot: int = 2000, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean of per-point terms.

    Efron & Tibshirani, *An Introduction to the Bootstrap* (1993), Sec. 13.3: the interval is
    the ``(a/2, 1 - a/2)`` quantiles of the mean over ``n_boot`` resamples with replacement.
    For scores that are means over points only (see the module docstring).
    """
    x = _vector(per_point, "per_point", 2)
    _check_level(confidence)
    if n_boot < 100:
        raise ValueError(f"n_boot must be >= 100, got {n_boot}")
    rng = np.random.default_rng(seed)
    # Blocks of resamples keep the index matrix near a million entries at any n.
    block = max(1, 1_000_000 // len(x))
    means = np.concatenate([x[rng.integers(0, len(x), (min(block, n_boot - i), len(x)))]
                            .mean(axis=1) for i in range(0, n_boot, block)])
    a = 1.0 - confidence
    low, high = np.quantile(means, [a / 2, 1 - a / 2])
    return Interval(float(x.mean()), float(low), float(high), confidence)


def floor_summary(draws: np.ndarray | Sequence[float]) -> FloorSummary:
    """The floor as mean +- sd over independent reference draws (at least two)."""
    x = _vector(draws, "draws", 2)
    return FloorSummary(float(x.mean()), float(x.std(ddof=1)), len(x))


TRANSFORMS = ("identity", "log", "logit")


def _transform(values: np.ndarray, kind: str) -> np.ndarray:
    if kind not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {kind!r}")
    if kind == "log":
        if np.any(values <= 0):
            raise ValueError("the log transform needs positive scores")
        return np.log(values)
    if kind == "logit":
        if np.any((values < 0) | (values > 1)):
            raise ValueError("the logit transform needs scores in [0, 1]")
        v = np.clip(values, 1e-6, 1 - 1e-6)
        return np.log(v / (1 - v))
    return values


def worse_than_reference_p(score: float, floor_draws: np.ndarray | Sequence[float], *,
                           larger_is_worse: bool = True, transform: str = "identity") -> float:
    """One-sided p-value that ``score`` is worse than a fresh exact reference draw.

    The prediction test for one new observation from a normal sample of size ``R`` (mean
    ``m``, sd ``s``): ``T = (score - m) / (s sqrt(1 + 1/R))`` follows Student's t with
    ``R - 1`` degrees of freedom under H0 (the job's sample has the target's law). Normality
    of the plug-in score over draws is an *approximation* (central limit behaviour of
    W2/MMD/coverage at n in the thousands; checked by the false-positive rate of
    benchmarks/power.py). ``transform`` maps draws and score first (``log`` for positive,
    right-skewed scores such as W2, ``logit`` for proportions such as coverage): a
    variance-stabilising approximation that brings the draws closer to normal.
    """
    if not math.isfinite(score):
        raise ValueError(f"score must be finite, got {score}")
    draws = _vector(floor_draws, "floor_draws", 2)
    # A monotone map keeps the direction; the score is mapped like the draws.
    if transform == "log":  # a score of 0 (or below) is better than any positive draw
        score = max(score, 1e-300)
    elif transform == "logit":
        score = min(max(score, 0.0), 1.0)
    draws, score = _transform(draws, transform), float(_transform(np.array([score]), transform)[0])
    f = floor_summary(draws)
    diff = (score - f.mean) if larger_is_worse else (f.mean - score)
    if f.sd == 0.0:
        return 0.0 if diff > 0 else 1.0
    t = diff / (f.sd * math.sqrt(1.0 + 1.0 / f.n))
    return float(sps.t.sf(t, df=f.n - 1))


def combined_rank_p(score: np.ndarray | Sequence[float], floor_draws: np.ndarray, *,
                    larger_is_worse: Sequence[bool], transforms: Sequence[str] | None = None
                    ) -> float:
    """Distribution-free p-value that a job is worse than exact draws on any of K scores.

    A Monte-Carlo test (Barnard 1963; Hope, JRSS-B 1968) of the combined statistic
    ``T = min_k p_k``, ``p_k`` the prediction p-value of score k
    (:func:`worse_than_reference_p`). The job's draw and the ``R`` floor draws (rows of
    ``floor_draws``, shape ``(R, K)``) are treated alike: each one's ``T`` is computed against
    the other ``R``, so under H0 (all ``R + 1`` draws exchangeable given the test set) the
    job's rank is uniform and ``p = (1 + #{floor T <= job T}) / (R + 1)`` is exact at
    level ``j / (R + 1)`` whatever the scores' law: no normality, no multiple-testing
    correction. The smallest attainable p is ``1 / (R + 1)``: R = 19 for 0.05, 49 for 0.02.
    """
    job = _vector(score, "score")
    floors = np.asarray(floor_draws, dtype=np.float64)
    k = len(job)
    if floors.ndim != 2 or floors.shape[1] != k or floors.shape[0] < 3:
        raise ValueError(f"floor_draws must have shape (R >= 3, {k}), got {floors.shape}")
    if len(larger_is_worse) != k:
        raise ValueError(f"larger_is_worse needs {k} entries, got {len(larger_is_worse)}")
    transforms = list(transforms) if transforms is not None else ["identity"] * k
    if len(transforms) != k:
        raise ValueError(f"transforms needs {k} entries, got {len(transforms)}")
    pooled = np.vstack([job, floors])
    if not np.all(np.isfinite(pooled)):
        raise ValueError("score and floor_draws must be finite")
    n_ref = len(pooled) - 1  # each draw is compared with the other R
    stat = np.ones(len(pooled))
    for j in range(k):
        col = pooled[:, j]
        if transforms[j] == "log":
            col = np.concatenate([[max(col[0], 1e-300)], col[1:]])
        v = _transform(col, transforms[j])
        # Leave-one-out mean and sd of the other R draws, for every draw at once.
        mean = (v.sum() - v) / n_ref
        ss = (v**2).sum() - v**2 - n_ref * mean**2
        sd = np.sqrt(np.maximum(ss, 0.0) / (n_ref - 1))
        diff = (v - mean) if larger_is_worse[j] else (mean - v)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = diff / (sd * math.sqrt(1.0 + 1.0 / n_ref))
        p = np.where(sd > 0, sps.t.sf(t, df=n_ref - 1), np.where(diff > 0, 0.0, 1.0))
        stat = np.minimum(stat, p)
    return float((1 + np.sum(stat[1:] <= stat[0])) / len(pooled))


def draw_interval(score: float, floor_draws: np.ndarray | Sequence[float], *,
                  confidence: float = 0.95) -> Interval:
    """A job's interval, taking the floor's draw-to-draw sd as its own (an approximation)."""
    _check_level(confidence)
    f = floor_summary(floor_draws)
    half = sps.t.ppf(0.5 + confidence / 2, df=f.n - 1) * f.sd * math.sqrt(1.0 + 1.0 / f.n)
    return Interval(float(score), float(score - half), float(score + half), confidence)


def floor_ratio_interval(score: float, floor_draws: np.ndarray | Sequence[float], *,
                         confidence: float = 0.95) -> Interval:
    """``score / floor_mean`` with :func:`draw_interval`'s bounds divided by the floor mean.

    The floor mean's own error (sd / sqrt(R)) is folded in by the ``sqrt(1 + 1/R)`` factor of
    the prediction interval; a ratio whose interval covers 1 is not distinguishable from an
    exact draw.
    """
    f = floor_summary(floor_draws)
    if f.mean <= 0:
        raise ValueError(f"the floor mean must be positive for a ratio, got {f.mean}")
    iv = draw_interval(score, floor_draws, confidence=confidence)
    return Interval(iv.estimate / f.mean, iv.low / f.mean, iv.high / f.mean, confidence)


def seed_mean_interval(values: np.ndarray | Sequence[float], *,
                       confidence: float = 0.95) -> Interval:
    """The mean over seeds with a Student-t interval ``mean +- t_{n-1} s / sqrt(n)``.

    With one seed the interval is undefined (NaN bounds), never a zero-width interval.
    """
    x = _vector(values, "values", 1)
    _check_level(confidence)
    if len(x) == 1:
        return Interval(float(x[0]), math.nan, math.nan, confidence)
    half = sps.t.ppf(0.5 + confidence / 2, df=len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return Interval(float(x.mean()), float(x.mean() - half), float(x.mean() + half), confidence)


def paired_permutation_test(a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float], *,
                            alternative: str = "two-sided", n_perm: int = 10_000,
                            seed: int = 0) -> float:
    """Sign-flip permutation p-value for the mean paired difference ``a - b``.

    Pairs share test points, seed and draw. Under H0 each difference is symmetric about 0, so
    its sign is exchangeable (Good 2005, Sec. 3.3). All ``2^n`` sign patterns are enumerated
    when ``2^n <= n_perm`` (exact p); otherwise ``n_perm`` random flips with the +1
    correction of Phipson & Smyth (2010). ``alternative``: ``two-sided``, ``greater``
    (a > b) or ``less``. With ``n`` pairs the smallest attainable two-sided p is ``2^(1-n)``:
    fewer than 6 pairs cannot reach 0.05.
    """
    x, y = _vector(a, "a"), _vector(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b must pair up, got lengths {len(x)} and {len(y)}")
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be two-sided, greater or less, got {alternative!r}")
    d = x - y
    n = len(d)
    if n <= 20 and 2**n <= n_perm:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        exact = True
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(n_perm, n))
        exact = False
    null = signs @ d / n
    obs = d.mean()
    tol = 1e-12 * max(1.0, abs(obs))
    if alternative == "greater":
        hits = np.sum(null >= obs - tol)
    elif alternative == "less":
        hits = np.sum(null <= obs + tol)
    else:
        hits = np.sum(np.abs(null) >= abs(obs) - tol)
    if exact:
        return float(hits / len(null))
    return float((hits + 1) / (len(null) + 1))


def paired_noise_test(a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float], *,
                      noise_sd: float) -> float:
    """Two-sided z-test of the mean paired difference when there are too few pairs to permute.

    *An approximation* for 2-5 seeds: the variance of the mean difference is taken as
    ``s_d^2 / n + 2 noise_sd^2 / n``, the observed between-pair variance (0 for one pair)
    plus each score's draw noise (the floor's sd over reference draws), so a gap far larger
    than both the seed scatter and the sample noise is called, and anything within them is a
    tie. Use :func:`paired_permutation_test` from 6 pairs on.
    """
    x, y = _vector(a, "a"), _vector(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b must pair up, got lengths {len(x)} and {len(y)}")
    if not (math.isfinite(noise_sd) and noise_sd >= 0):
        raise ValueError(f"noise_sd must be a finite number >= 0, got {noise_sd}")
    d = x - y
    n = len(d)
    var = ((d.var(ddof=1) if n > 1 else 0.0) + 2 * noise_sd**2) / n
    if var == 0.0:
        return 1.0 if d.mean() == 0 else 0.0
    return float(2 * sps.norm.sf(abs(d.mean()) / math.sqrt(var)))


def holm(pvalues: np.ndarray | Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm, Scand. J. Statist. 1979).

    Sorted ascending, ``p_(i)`` becomes ``max_{j<=i} min(1, (m - j + 1) p_(j))``; rejecting
    adjusted p <= alpha controls the family-wise error at alpha under any dependence.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ValueError("pvalues must be a 1-D array of numbers in [0, 1]")
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


@dataclass(frozen=True)
class RankGroups:
    """Solvers ordered best first, their group (0 = top), and whether a best is declared."""

    order: list[str]
    group: dict[str, int]
    best: str | None
    adjusted_p: dict[tuple[str, str], float]


PairTest = Callable[[np.ndarray, np.ndarray], float]


def rank_groups(scores: Mapping[str, np.ndarray | Sequence[float]], *, alpha: float = 0.05,
                lower_is_better: bool = True, test: PairTest | None = None) -> RankGroups:
    """Rank solvers by mean paired score and group those not distinguishable at ``alpha``.

    ``scores[name]`` holds one value per (seed, draw) pair, in the same order for every
    solver. All pairwise two-sided p-values (``test``, default
    :func:`paired_permutation_test`) are Holm-adjusted together. Walking the order best
    first, a new group starts at the first solver significantly different from the current
    group's leader, so groups are contiguous and every member of a group is tied with its
    leader. ``best`` is set only when the top group has one member, i.e. the first solver is
    significantly better than the second.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if len(scores) == 0:
        raise ValueError("scores is empty: give at least one solver")
    arrays = {k: _vector(v, f"scores[{k!r}]") for k, v in scores.items()}
    lengths = {len(v) for v in arrays.values()}
    if len(lengths) != 1:
        raise ValueError(f"every solver needs the same number of paired scores, got {lengths}")
    test = test or paired_permutation_test
    sign = 1.0 if lower_is_better else -1.0
    order = sorted(arrays, key=lambda k: (sign * arrays[k].mean(), k))
    pairs = list(itertools.combinations(order, 2))
    raw = [test(arrays[i], arrays[j]) for i, j in pairs]
    adj = holm(raw) if pairs else np.array([])
    adjusted = {}
    for (i, j), p in zip(pairs, adj, strict=True):
        adjusted[(i, j)] = adjusted[(j, i)] = float(p)
    group, leader, g = {}, order[0], 0
    for name in order:
        if name != leader and adjusted[(leader, name)] <= alpha:
            g, leader = g + 1, name
        group[name] = g
    top = [k for k in order if group[k] == 0]
    return RankGroups(order, group, top[0] if len(top) == 1 and len(order) > 1 else None,
                      adjusted)
