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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from genbench.eval.stats import (
    paired_noise_test,
    paired_permutation_test,
    rank_groups,
    seed_mean_interval,
)

__all__ = ["LADDER", "MIN_PERMUTATION_PAIRS", "Call", "call_ties"]

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
