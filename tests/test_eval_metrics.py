"""PRDC, the MMD permutation test, mode errors and cross-entropy: tests that can fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats as sps

from genbench.data.mixtures import GaussianMixture, MixtureParams, random_mixture
from genbench.eval.metrics.likelihood import cross_entropy, entropy_mc, gaussian_entropy
from genbench.eval.metrics.mmd import mmd2
from genbench.eval.metrics.mmd_test import mmd_test
from genbench.eval.metrics.modes import mode_report
from genbench.eval.metrics.prdc import knn_radii, prdc

MIX = random_mixture(MixtureParams(dim=5, n_components=4, radius=4.0, std=0.5))


def _draw(n: int, seed: int, mix: GaussianMixture = MIX) -> np.ndarray:
    return mix.sample(n, np.random.default_rng(seed))


# -- precision / recall / density / coverage -------------------------------------------------

def test_knn_radius_is_kth_other_point():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    torch.testing.assert_close(knn_radii(x, 1), torch.tensor([1.0, 1.0, 2.0, 4.0],
                                                           dtype=torch.float64))
    torch.testing.assert_close(knn_radii(x, 2), torch.tensor([3.0, 2.0, 3.0, 6.0],
                                                           dtype=torch.float64))


def test_prdc_by_hand():
    real = np.array([[0.0], [1.0], [2.0], [10.0]])
    gen = np.array([[0.5], [20.0], [21.0], [22.0]])
    r = prdc(gen, real, k=1)
    # Real radii (k=1): 1, 1, 1, 8. Gen radii: 19.5, 1, 1, 1.
    assert r.precision == pytest.approx(0.25)  # only 0.5 lies in a real ball
    assert r.recall == pytest.approx(1.0)  # 0.5's ball (radius 19.5) covers every real point
    assert r.coverage == pytest.approx(0.5)  # balls of 0 and 1 contain 0.5
    assert r.density == pytest.approx(2 / 4)  # 0.5 sits in two real balls, k M = 4


def test_prdc_identical_laws_near_one_and_collapse_has_no_recall():
    real, gen = _draw(2000, 1), _draw(2000, 2)
    same = prdc(gen, real)
    assert same.precision > 0.85 and same.recall > 0.85
    assert same.coverage > 0.9 and 0.85 < same.density < 1.15
    # Collapse onto one mode: precise but without diversity.
    one = MIX.means[0] + 0.5 * np.random.default_rng(3).standard_normal((2000, 5))
    col = prdc(one, real)
    assert col.precision > 0.85
    assert col.recall < 0.35 and col.coverage < 0.35
    # Collapse at the mean (off the support): neither fidelity nor diversity.
    mean = real.mean(0) + 1e-3 * np.random.default_rng(4).standard_normal((2000, 5))
    col = prdc(mean, real)
    assert col.recall < 0.01 and col.precision < 0.05


def test_prdc_rejects_bad_input():
    with pytest.raises(ValueError, match="n > k"):
        prdc(np.zeros((3, 2)), np.zeros((10, 2)), k=5)
    with pytest.raises(ValueError, match="dimension"):
        prdc(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="positive int"):
        prdc(np.zeros((10, 2)), np.zeros((10, 2)), k=0)


# -- MMD permutation test --------------------------------------------------------------------

def test_mmd_statistic_is_the_u_statistic():
    x, y = _draw(300, 5), _draw(200, 6) + 0.3
    res = mmd_test(x, y, bandwidth=2.0, n_perm=19)
    expected = mmd2(torch.as_tensor(x), torch.as_tensor(y), 2.0, unbiased=True)
    assert res.mmd2 == pytest.approx(expected, rel=1e-9)


def test_mmd_p_value_is_calibrated_under_the_null_and_small_for_a_shift():
    ps = [mmd_test(_draw(200, 100 + i), _draw(200, 200 + i), n_perm=99, seed=i).p_value
          for i in range(50)]
    assert np.mean(np.array(ps) <= 0.05) <= 0.1
    assert 0.3 < np.mean(ps) < 0.7  # roughly uniform: mean 1/2
    shifted = mmd_test(_draw(500, 7) + np.array([0.4, 0, 0, 0, 0]), _draw(500, 8), n_perm=99)
    assert shifted.p_value <= 0.01 and shifted.mmd2 > 0


# -- mode weights ----------------------------------------------------------------------------

def test_mode_weights_exact_on_constructed_samples():
    means = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    pts = np.concatenate([np.repeat(means[:1], 50, 0), np.repeat(means[1:2], 30, 0),
                          np.repeat(means[2:], 20, 0), [[100.0, 100.0]] * 25])
    w = np.array([0.5, 0.25, 0.25])
    r = mode_report(pts, means, 1.0, w)
    np.testing.assert_allclose(r.weights, [0.5, 0.3, 0.2])
    assert r.weight_error == pytest.approx(0.5 * (0 + 0.05 + 0.05))
    assert r.off_mode_fraction == pytest.approx(25 / 125) and r.modes_found == 3
    missing = mode_report(pts[:80], means, 1.0, w)  # no point at the third mode
    assert missing.modes_found == 2
    # Counts (50, 30, 0) against (40, 20, 20): chi2 = 2.5 + 5 + 20 = 27.5, df 2: p = e^-13.75.
    assert missing.chi2_p == pytest.approx(math.exp(-13.75), rel=1e-9)
    soft = mode_report(pts, means, 1.0, w, assignment="soft")
    np.testing.assert_allclose(soft.weights, [0.5, 0.3, 0.2], atol=1e-12)


def test_mode_report_on_a_target_draw_is_near_truth():
    r = mode_report(_draw(4000, 9), MIX.means, MIX.std, MIX.weights)
    assert r.weight_error < 0.03 and r.modes_found == 4
    assert r.off_mode_fraction < 0.005 and r.chi2_p > 0.001


# -- cross-entropy ---------------------------------------------------------------------------

def test_cross_entropy_of_a_gaussian_against_itself_is_its_entropy():
    mean = np.array([1.5, -2.0, 0.7])
    a = np.array([[2.0, 0.0, 0.0], [0.5, 0.7, 0.0], [-0.3, 0.2, 0.4]])
    cov = a @ a.T  # anisotropic, det != 1
    dist = sps.multivariate_normal(mean, cov)
    x = dist.rvs(20000, random_state=0)
    ce = cross_entropy(x, lambda t: torch.as_tensor(dist.logpdf(t.numpy())))
    h = gaussian_entropy(cov)
    assert h == pytest.approx(dist.entropy(), rel=1e-12)
    assert abs(ce.value - h) < 4 * ce.stderr
    # Against a wrong mean the excess is KL = 0.5 dm^T cov^-1 dm (equal covariances).
    dm = np.array([0.5, 0.0, 0.0])
    ce_shift = cross_entropy(x + dm, lambda t: torch.as_tensor(dist.logpdf(t.numpy())))
    kl = 0.5 * dm @ np.linalg.solve(cov, dm)
    assert abs(ce_shift.value - h - kl) < 4 * ce_shift.stderr + 0.01


def test_mixture_entropy_by_monte_carlo_and_collapse_far_above():
    h = entropy_mc(MIX.sample, MIX.log_prob, 20000, seed=1)
    # An isotropic mode has entropy 0.5 d log(2 pi e s^2); well-separated modes add log K.
    approx = 0.5 * 5 * math.log(2 * math.pi * math.e * 0.25) + math.log(4)
    assert abs(h.value - approx) < 0.05
    mean = np.repeat(MIX.means.mean(0, keepdims=True), 100, 0)
    assert cross_entropy(mean, MIX.log_prob).value > h.value + 5


def test_cross_entropy_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        cross_entropy(np.zeros(5), MIX.log_prob)
    with pytest.raises(ValueError, match="positive definite"):
        gaussian_entropy(-np.eye(2))


def test_prdc_blocks_do_not_change_the_result():
    x, y = _draw(300, 11), _draw(200, 12) + 0.2
    assert prdc(x, y, chunk=37).scores() == prdc(x, y).scores()
