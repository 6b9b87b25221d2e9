"""genbench.eval.stats: coverage of intervals, Holm by hand, rank groups on known separations."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest

from genbench.eval.stats import (
    bootstrap_mean_interval,
    draw_interval,
    floor_ratio_interval,
    floor_summary,
    holm,
    paired_noise_test,
    paired_permutation_test,
    rank_groups,
    seed_mean_interval,
    worse_than_reference_p,
)


def test_seed_interval_matches_t_formula_and_covers_nominally():
    x = np.array([1.0, 2.0, 4.0])
    iv = seed_mean_interval(x, confidence=0.9)
    half = 2.919986 * x.std(ddof=1) / math.sqrt(3)  # t_{0.95, 2}
    assert iv.estimate == pytest.approx(7 / 3)
    assert iv.high - iv.estimate == pytest.approx(half, rel=1e-5)
    rng = np.random.default_rng(0)
    mu = 3.7  # non-zero mean, sd != 1
    hits = [seed_mean_interval(rng.normal(mu, 2.5, 4)).covers(mu) for _ in range(2000)]
    assert abs(np.mean(hits) - 0.95) < 0.015


def test_one_seed_has_no_interval():
    iv = seed_mean_interval([2.0])
    assert iv.estimate == 2.0 and math.isnan(iv.low) and math.isnan(iv.high)


def test_bootstrap_interval_covers_a_known_mean_near_nominal():
    rng = np.random.default_rng(1)
    mu = 1.3  # exponential: skewed, mean != 0
    hits = [bootstrap_mean_interval(rng.exponential(mu, 300), n_boot=300, seed=i).covers(mu)
            for i in range(400)]
    assert 0.91 < np.mean(hits) < 0.98


def test_floor_summary_and_prediction_p_value():
    draws = np.array([1.0, 1.2, 0.8, 1.1, 0.9])
    f = floor_summary(draws)
    assert (f.mean, f.n) == (pytest.approx(1.0), 5)
    assert f.sd == pytest.approx(np.std(draws, ddof=1))
    t = (1.5 - 1.0) / (f.sd * math.sqrt(1.2))
    from scipy import stats as sps
    assert worse_than_reference_p(1.5, draws) == pytest.approx(sps.t.sf(t, 4))
    # Direction: for a score where lower is worse (recall), 1.5 is better, not worse.
    assert worse_than_reference_p(1.5, draws, larger_is_worse=False) > 0.9


def test_prediction_test_has_nominal_size_under_the_null():
    rng = np.random.default_rng(2)
    rejections = []
    for _ in range(3000):
        draws = rng.normal(5.0, 0.3, 11)
        rejections.append(worse_than_reference_p(rng.normal(5.0, 0.3), draws) < 0.05)
    assert abs(np.mean(rejections) - 0.05) < 0.012


def test_draw_and_ratio_intervals():
    draws = np.array([2.0, 2.2, 1.8, 2.1, 1.9])
    iv = draw_interval(1.9, draws)
    ratio = floor_ratio_interval(1.9, draws)
    assert ratio.estimate == pytest.approx(0.95)
    assert ratio.low == pytest.approx(iv.low / 2.0) and ratio.covers(1.0)
    assert not floor_ratio_interval(3.0, draws).covers(1.0)


def test_holm_against_a_hand_worked_example():
    # Sorted p: 0.01, 0.02, 0.03, 0.04 with m = 4 -> 0.04, 0.06, 0.06 (monotone), 0.06.
    p = np.array([0.03, 0.01, 0.04, 0.02])
    np.testing.assert_allclose(holm(p), [0.06, 0.04, 0.06, 0.06])
    np.testing.assert_allclose(holm([0.5, 0.001]), [0.5, 0.002])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([1.2])


def test_permutation_test_exact_small_case():
    # d = (1, 2, 3): of the 8 sign patterns only (+,+,+) reaches mean 2 -> one-sided p = 1/8.
    a, b = np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0])
    assert paired_permutation_test(a, b, alternative="greater") == pytest.approx(1 / 8)
    assert paired_permutation_test(a, b) == pytest.approx(2 / 8)
    with pytest.raises(ValueError, match="pair up"):
        paired_permutation_test(a, b[:2])


def test_noise_test_separates_large_gaps_and_ties_small_ones():
    assert paired_noise_test([1.5, 1.52], [1.0, 1.01], noise_sd=0.01) < 1e-6
    assert paired_noise_test([1.01, 1.0], [1.0, 1.02], noise_sd=0.01) > 0.3


def _solvers(rng: np.random.Generator, means: dict[str, float], n: int = 12) -> dict:
    common = rng.normal(0, 1.0, n)  # shared test-point / seed effect: pairing removes it
    return {k: m + common + rng.normal(0, 0.05, n) for k, m in means.items()}


def test_rank_groups_on_known_separations():
    rng = np.random.default_rng(3)
    scores = _solvers(rng, {"a": 1.0, "b": 1.0, "c": 2.0, "d": 3.0})
    rg = rank_groups(scores)
    assert rg.group["a"] == rg.group["b"] == 0  # a tie is a tie
    assert rg.group["c"] == 1 and rg.group["d"] == 2
    assert rg.best is None  # no best when the top two are tied


def test_rank_groups_declares_best_only_when_significantly_better():
    rng = np.random.default_rng(4)
    rg = rank_groups(_solvers(rng, {"x": 0.5, "y": 1.0, "z": 1.0}))
    assert rg.order[0] == "x" and rg.best == "x" and rg.group["y"] == rg.group["z"] == 1
    rg = rank_groups(_solvers(rng, {"x": 0.5, "y": 1.0}), lower_is_better=False)
    assert rg.order[0] == "y" and rg.best == "y"


def test_rank_groups_with_two_seeds_uses_the_noise_test():
    scores = {"ddpm": [1.00, 1.02], "gaussian": [1.33, 1.34], "collapse": [1.55, 1.55]}
    # Two pairs: the sign-flip test cannot separate anything at 0.05 ...
    assert set(rank_groups(scores).group.values()) == {0}
    # ... the noise-aware test can, with the floor's draw sd.
    rg = rank_groups(scores, test=partial(paired_noise_test, noise_sd=0.01))
    assert rg.group == {"ddpm": 0, "gaussian": 1, "collapse": 2} and rg.best == "ddpm"


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="at least 2"):
        floor_summary([1.0])
    with pytest.raises(ValueError, match="confidence"):
        seed_mean_interval([1.0, 2.0], confidence=95)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_mean_interval([1.0, math.nan])
    with pytest.raises(ValueError, match="same number"):
        rank_groups({"a": [1.0, 2.0], "b": [1.0]})


def test_transformed_prediction_test_is_the_test_on_the_mapped_draws():
    draws = np.array([0.9, 1.1, 1.0, 1.3, 0.8])
    expected = worse_than_reference_p(math.log(1.6), np.log(draws))
    assert worse_than_reference_p(1.6, draws, transform="log") == pytest.approx(expected)
    cov = np.array([0.96, 0.97, 0.95, 0.965])
    logit = np.log(cov / (1 - cov))
    expected = worse_than_reference_p(math.log(0.9 / 0.1), logit, larger_is_worse=False)
    assert worse_than_reference_p(0.9, cov, larger_is_worse=False,
                                  transform="logit") == pytest.approx(expected)
    assert worse_than_reference_p(0.0, draws, transform="log") > 0.99
    with pytest.raises(ValueError, match="transform"):
        worse_than_reference_p(1.0, draws, transform="sqrt")


def test_combined_rank_test_is_exact_for_skewed_scores_and_sees_a_shift():
    from genbench.eval.stats import combined_rank_p

    rng = np.random.default_rng(5)
    up = [True, True, False]
    rejections = []
    for _ in range(1000):
        # Heavily skewed scores (lognormal, chi-square): a t bound would be anti-conservative.
        draws = np.column_stack([rng.lognormal(0, 1.0, 20), rng.chisquare(1, 20),
                                 rng.uniform(0.9, 1.0, 20)])
        rejections.append(combined_rank_p(draws[0], draws[1:], larger_is_worse=up) <= 0.05)
    assert abs(np.mean(rejections) - 1 / 20) < 0.018  # exact level 1/(R + 1), R = 19
    draws = np.column_stack([rng.lognormal(0, 1.0, 19), rng.chisquare(1, 19),
                             rng.uniform(0.9, 1.0, 19)])
    assert combined_rank_p([1.0, 0.5, 0.5], draws, larger_is_worse=up) == pytest.approx(1 / 20)
    with pytest.raises(ValueError, match="shape"):
        combined_rank_p([1.0, 2.0], draws, larger_is_worse=up[:2])


def test_combined_rank_statistic_matches_the_one_score_prediction_test():
    from genbench.eval.stats import combined_rank_p

    draws = np.array([[1.0], [1.2], [0.8], [1.1], [0.9], [1.05]])
    job = [1.15]
    pooled = np.vstack([job, draws])[:, 0]
    loo = [worse_than_reference_p(pooled[i], np.delete(pooled, i)) for i in range(len(pooled))]
    expected = (1 + sum(q <= loo[0] for q in loo[1:])) / len(pooled)
    assert combined_rank_p(job, draws, larger_is_worse=[True]) == pytest.approx(expected)
