"""Rank groups, intervals and the sanity ladder for one data set's leaderboard rows.

Solvers are compared pairwise on their headline score, paired by seed (every job of a data
set is scored on the same test points, so a seed's pair shares test set and seed). With six
or more shared seeds the sign-flip permutation test is exact
(:func:`genbench.eval.stats.paired_permutation_test`); with fewer it cannot reach 0.05, so
the normal test that adds each score's draw-to-draw noise (the floor's sd over reference
draws) to the seed scatter is used (:func:`genbench.eval.stats.paired_noise_test`, *an
approximation*). All pairs are Holm-corrected together and solvers not distinguishable from
their group's leader share its group (:func:`genbench.eval.stats.rank_groups`); a best is
named only when the top group has one member.

The ladder (``collapse``, ``gaussian``, ``memoriser``, :mod:`solvers.ladder`) are reference
rows; a real solver is flagged when it is not significantly better than ``gaussian`` (its
mean is not lower, or the Holm-adjusted paired p exceeds alpha).

Across data sets (the report's "Overall" table, :func:`overall_groups`) the unit is the data
set, not the seed: rows are compared by their ranks, following Demšar, "Statistical
Comparisons of Classifiers over Multiple Data Sets", JMLR 7 (2006), Sec. 3.2.2. Over the
``N`` data sets that every compared row was ranked on, each data set ranks the ``k`` rows
1..k (average ranks for ties); rows i and j differ when
``z = (R_i - R_j) / sqrt(k (k + 1) / (6 N))`` (``R``: mean rank) is far from 0 under the
standard normal (*an approximation*, the large-N limit of the Friedman ranks' distribution),
with Holm over all pairs (Holm's step-down holds for any dependence between the pairs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from genbench.eval.stats import (
    paired_noise_test,
    paired_permutation_test,
    rank_groups,
    seed_mean_interval,
)

__all__ = ["LADDER", "MIN_PERMUTATION_PAIRS", "Call", "OverallCall", "call_ties",
           "mean_rank_test", "overall_groups"]

LADDER = ("collapse", "gaussian", "memoriser")
MIN_PERMUTATION_PAIRS = 6  # 2^(1-n) <= 0.05 from n = 6 on


@dataclass(frozen=True)
class Call:
    """One row's verdict: its rank group (1 = top), whether it is the declared best, the mean
    over seeds with its interval, and the ladder's flags."""

    group: int | None
    best: bool
    mean: float
    low: float
    high: float
    reference: bool
    not_better_than_gaussian: bool | None


def _test(noise_sd: float, n: int):
    if n >= MIN_PERMUTATION_PAIRS:
        return paired_permutation_test
    return lambda a, b: paired_noise_test(a, b, noise_sd=noise_sd)


def call_ties(values: Mapping[str, Mapping[int, float]], *, solvers: Mapping[str, str],
              noise_sd: float = 0.0, alpha: float = 0.05, confidence: float = 0.95,
              job_intervals: Mapping[str, tuple[float, float]] | None = None
              ) -> dict[str, Call]:
    """Rank groups of rows ``values[label] = {seed: headline score}`` (lower is better).

    Rows are paired on the seeds all of them share; a row with no finite score gets no
    group. ``solvers[label]`` names the row's solver (ladder rows are references).
    ``job_intervals[label]``: the job's own interval, shown when a row has one seed (a
    Student-t interval needs two).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if not (math.isfinite(noise_sd) and noise_sd >= 0):
        noise_sd = 0.0  # unknown draw noise: the test rests on the seed scatter alone
    finite = {k: {s: float(v) for s, v in d.items() if v is not None and math.isfinite(v)}
              for k, d in values.items()}
    ranked = [k for k, d in finite.items() if d]
    shared = sorted(set.intersection(*(set(finite[k]) for k in ranked))) if ranked else []
    groups = None
    if len(ranked) > 1 and shared:
        paired = {k: np.array([finite[k][s] for s in shared]) for k in ranked}
        groups = rank_groups(paired, alpha=alpha, test=_test(noise_sd, len(shared)))
    gaussian = next((k for k in ranked if solvers.get(k) == "gaussian"), None)
    calls = {}
    for label in values:
        scores = list(finite.get(label, {}).values())
        if scores:
            iv = seed_mean_interval(scores, confidence=confidence)
            mean, low, high = iv.estimate, iv.low, iv.high
            if len(scores) == 1 and job_intervals and label in job_intervals:
                low, high = job_intervals[label]
        else:
            mean = low = high = math.nan
        group = None if groups is None or label not in groups.group else groups.group[label] + 1
        reference = solvers.get(label) in LADDER
        flag = None
        if groups is not None and gaussian is not None and label in groups.group \
                and not reference:
            better = (np.mean(list(finite[label].values()))
                      < np.mean(list(finite[gaussian].values())))
            flag = not (better and groups.adjusted_p[(label, gaussian)] <= alpha)
        calls[label] = Call(group, groups is not None and groups.best == label, mean, low, high,
                            reference, flag)
    return calls


@dataclass(frozen=True)
class OverallCall:
    """One row of the overall table: its rank group (1 = top; None: not ranked on every data
    set, so not compared) and whether it is the declared best."""

    group: int | None
    best: bool


def mean_rank_test(k: int, n: int):
    """The two-sided p of Demšar's (2006, Sec. 3.2.2) z test between two rows' rank vectors
    over ``n`` data sets with ``k`` rows ranked on each: ``z = (R_i - R_j) / sqrt(k (k + 1) /
    (6 n))``, a normal approximation."""
    if k < 2 or n < 1:
        raise ValueError(f"the mean-rank test needs k >= 2 rows and n >= 1 data sets, "
                         f"got k = {k}, n = {n}")
    se = math.sqrt(k * (k + 1) / (6.0 * n))

    def test(a: np.ndarray, b: np.ndarray) -> float:
        return float(2 * sps.norm.sf(abs(float(np.mean(a)) - float(np.mean(b))) / se))

    return test


def overall_groups(ranks: Mapping[str, Mapping[str, float]], *, alpha: float = 0.05
                   ) -> dict[str, OverallCall]:
    """Rank groups of rows ``ranks[label] = {data set: rank on it}`` (1 = best).

    Only rows ranked on every data set of the table are compared (a row missing a data set
    gets group None); they are re-ranked 1..k within each data set, compared pairwise by
    :func:`mean_rank_test`, Holm-adjusted together and grouped by
    :func:`genbench.eval.stats.rank_groups` (a new group starts at the first row significantly
    different from its group's leader). A best is declared only when the top group has one
    row: significantly better than the next.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    datasets = sorted({d for r in ranks.values() for d in r})
    complete = [label for label, r in ranks.items()
                if all(d in r and math.isfinite(r[d]) for d in datasets)]
    calls = {label: OverallCall(None, False) for label in ranks}
    if len(complete) < 2 or not datasets:
        return calls
    per_dataset = np.array([sps.rankdata([ranks[label][d] for label in complete])
                            for d in datasets])  # (N, k): re-ranked among the compared rows
    scores = {label: per_dataset[:, i] for i, label in enumerate(complete)}
    groups = rank_groups(scores, alpha=alpha,
                         test=mean_rank_test(len(complete), len(datasets)))
    for label in complete:
        calls[label] = OverallCall(groups.group[label] + 1, groups.best == label)
    return calls
