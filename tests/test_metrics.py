"""Correctness of the metrics and the harness against closed forms and known answers.

Tolerances are set from the estimators' own error at the sizes used here (seeded draws,
measured over several seeds when the tests were written), so each test can fail:
plug-in W2 at n = 1500 sits within ~4 % of the Gaussian closed form (sampling error of the
scale plus the upward floor bias): held to 6 %; the debiased Sinkhorn W2 sits within 0.2 %
of exact W2 far from the floor: held to 2 %; histogram TV of two 1-D Gaussians at n = 20000
within 0.006: held to 0.02; the classifier TV is a lower bound, held to [truth - 0.08,
truth + 0.04]; MC TV within 3 standard errors; MMD^2 at n = 2000 within ~6 %: held to 10 %.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from genbench.codecs import get_autoencoder
from genbench.core.config import EvalConfig
from genbench.data import build_dataset
from genbench.eval.harness import Evaluation
from genbench.eval.metrics import median_bandwidth, mmd, tv, w2, w2_gaussian
from genbench.eval.metrics.mmd import mmd2

SHIFT_TV = 2 * norm.cdf(0.5) - 1  # TV between N(0, 1) and N(1, 1)


def gaussians(n: int, d: int, shift: float = 1.0, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    y[:, 0] += shift
    return x, y


# -- W2 -----------------------------------------------------------------------------------
def test_exact_w2_in_one_dimension_matches_sorted_samples():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((300, 1)), rng.exponential(size=(300, 1))
    sorted_formula = math.sqrt(np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2))
    value, method = w2(x, y)
    assert method == "exact"
    assert value == pytest.approx(sorted_formula, rel=1e-9)


def test_w2_gaussian_closed_form_known_values():
    assert w2_gaussian(np.zeros(1), np.eye(1), np.ones(1) * 3, np.eye(1) * 4) == pytest.approx(
        math.sqrt(9 + 1))  # |m1 - m2|^2 + (s1 - s2)^2 in 1-D
    s = np.array([[2.0, 0.3], [0.3, 1.0]])
    assert w2_gaussian(np.ones(2), s, np.ones(2), s) == pytest.approx(0.0, abs=1e-7)


def test_exact_w2_approaches_the_gaussian_closed_form():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1500, 2))
    y = rng.standard_normal((1500, 2)) * np.array([1.0, 2.0]) + np.array([2.0, 0.0])
    truth = w2_gaussian(np.zeros(2), np.eye(2), np.array([2.0, 0.0]), np.diag([1.0, 4.0]))
    assert truth == pytest.approx(math.sqrt(5))
    assert w2(x, y)[0] == pytest.approx(truth, rel=0.06)


@pytest.mark.parametrize("dim", [2, 5])
def test_sinkhorn_w2_agrees_with_exact_far_from_the_floor(dim):
    x, y = gaussians(500, dim, shift=2.0, seed=dim)
    y[:, 1] *= 2.0
    exact, _ = w2(x, y, method="exact")
    approx, method = w2(x, y, method="sinkhorn", reg=0.01)
    assert method == "sinkhorn"
    assert approx == pytest.approx(exact, rel=0.02)


def test_sliced_w2_is_exact_in_1d_and_a_scaled_lower_bound_beyond():
    x, y = gaussians(400, 1, shift=1.5)
    assert w2(x, y, method="sliced", n_projections=20)[0] == pytest.approx(w2(x, y)[0], rel=1e-9)
    x, y = gaussians(500, 4, shift=2.0, seed=1)
    sliced, method = w2(x, y, method="sliced", n_projections=1000)
    assert method == "sliced"
    assert sliced < w2(x, y)[0]
    # A pure shift m: the sliced W2 is |m| / sqrt(d).
    assert math.sqrt(4) * sliced == pytest.approx(2.0, rel=0.05)


def test_sliced_w2_leaves_the_global_torch_rng_alone():
    x, y = gaussians(100, 3)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    w2(x, y, method="sliced", seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_auto_w2_switches_method_at_max_exact():
    x, y = gaussians(60, 2)
    assert w2(x, y, max_exact=60)[1] == "exact"
    assert w2(x, y, max_exact=59, large_n_method="sliced")[1] == "sliced"
    assert w2(x, y, max_exact=59, large_n_method="sinkhorn")[1] == "sinkhorn"
    expected = "sinkhorn" if torch.cuda.is_available() else "sliced"  # Sinkhorn is slow on CPU
    assert w2(x, y, max_exact=59)[1] == expected


def test_w2_floor_decreases_with_n():
    def floor(n: int) -> float:
        return float(np.mean([w2(*gaussians(n, 2, shift=0.0, seed=s))[0] for s in range(3)]))

    small, large = floor(100), floor(1600)
    assert large < 0.6 * small


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.ones((3, 2)), np.ones((3, 3)), "dimension"),
        (np.full((3, 2), np.nan), np.ones((3, 2)), "NaN"),
        (np.ones(3), np.ones((3, 1)), "shape"),
    ],
)
def test_w2_rejects_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        w2(x, y)


def test_w2_rejects_unknown_methods():
    with pytest.raises(ValueError, match="unknown W2 method"):
        w2(np.ones((3, 1)), np.ones((3, 1)), method="emd")
    with pytest.raises(ValueError, match="large_n_method"):
        w2(np.ones((3, 1)), np.ones((3, 1)), large_n_method="exact")


# -- TV -----------------------------------------------------------------------------------
def test_histogram_tv_of_two_gaussians_matches_closed_form():
    x, y = gaussians(20000, 1)
    result = tv(y, x)
    assert result.method == "histogram"
    assert result.value == pytest.approx(SHIFT_TV, abs=0.02)


def test_histogram_tv_identical_and_disjoint():
    x, _ = gaussians(2000, 2)
    assert tv(x, x).value == 0.0
    assert tv(x + 100.0, x).value == pytest.approx(1.0)  # all generated mass off the grid
    left, right = x[x[:, 0] < 0], x[x[:, 0] >= 0]
    assert tv(right, left).value > 0.95  # the supports touch only at the grid's edge


def test_histogram_floor_decreases_with_n():
    def floor(n: int) -> float:
        x, y = gaussians(n, 2, shift=0.0)
        return tv(y, x).value

    assert floor(20000) < 0.6 * floor(500)


def test_classifier_tv_is_a_tight_lower_bound_on_a_known_pair():
    x, y = gaussians(2000, 5)
    result = tv(y, x)
    assert result.method == "classifier"
    assert SHIFT_TV - 0.08 < result.value < SHIFT_TV + 0.04
    lo, hi = result.ci
    assert lo <= result.value <= hi


def test_classifier_tv_same_law_and_disjoint():
    x, y = gaussians(1000, 5, shift=0.0)
    same = tv(y, x, method="classifier")
    assert same.value < 0.1 and same.ci[0] == 0.0
    assert tv(x + 10.0, x, method="classifier").value > 0.95


def test_monte_carlo_tv_matches_closed_form():
    rng = np.random.default_rng(0)
    target = torch.as_tensor(rng.standard_normal((20000, 1)))
    result = tv(None, target, log_p=lambda z: torch.as_tensor(norm.logpdf(z[:, 0])),
                log_q=lambda z: torch.as_tensor(norm.logpdf(z[:, 0] - 1.0)))
    assert result.method == "monte_carlo"
    assert abs(result.value - SHIFT_TV) < 3 * result.detail["se"]
    assert result.ci[0] < SHIFT_TV < result.ci[1]
    flat = lambda z: torch.zeros(len(z))  # noqa: E731
    assert tv(None, target, log_p=flat, log_q=flat).value == 0.0


def test_tv_rejects_bad_requests():
    x, y = gaussians(50, 2)
    with pytest.raises(ValueError, match="unknown TV method"):
        tv(x, y, method="kde")
    with pytest.raises(ValueError, match="log_p"):
        tv(x, y, method="monte_carlo")
    with pytest.raises(ValueError, match="dimension"):
        tv(x[:, :1], y)


# -- MMD ----------------------------------------------------------------------------------
def test_mmd2_matches_the_gaussian_closed_form():
    x, y = gaussians(2000, 3, shift=2.0)
    h = 1.5
    shrink = (h**2 / (h**2 + 2)) ** 1.5  # E k(X, X') for X - X' ~ N(0, 2 I) in 3-D
    truth = 2 * shrink * (1 - math.exp(-4 / (2 * (h**2 + 2))))
    value = mmd2(torch.as_tensor(x), torch.as_tensor(y), h, unbiased=True)
    assert value == pytest.approx(truth, rel=0.10)


def test_mmd_uses_the_target_median_and_its_floor_decreases():
    x, y = gaussians(400, 2, shift=0.0)
    value, bandwidth = mmd(y, x)
    assert bandwidth == pytest.approx(median_bandwidth(x))
    big_x, big_y = gaussians(4000, 2, shift=0.0, seed=1)
    assert mmd(big_y, big_x, bandwidth=bandwidth)[0] < 0.6 * value
    assert mmd(x + 3.0, x)[0] > 5 * value


# -- the harness --------------------------------------------------------------------------
class ExactMixture:
    """A stand-in solver whose density is the target's own (in the identity latent space)."""

    has_density = True

    def __init__(self, splits, ae):
        self.splits, self.ae = splits, ae

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        x = self.ae.decode(z)
        return self.splits.log_prob(x) + math.log(abs(np.prod(self.ae.z_scale.numpy())))


class NoDensity:
    has_density = False


def _setup(dataset: dict, autoencoder: dict, cache):
    splits = build_dataset(dataset, seed=0)
    ae, _ = get_autoencoder(autoencoder, dataset, cache)
    return splits, ae


def test_harness_scores_a_perfect_sampler_at_its_floor(tmp_path):
    dataset = {"name": "gmm", "dim": 2, "n_components": 3, "radius": 1.5, "n_train": 600,
               "n_test": 800}
    splits, ae = _setup(dataset, {"name": "identity"}, tmp_path)
    x_gen = torch.as_tensor(splits.sampler(800, np.random.default_rng(99)), dtype=torch.float32)
    cfg = EvalConfig(empirical_baseline=True)
    out = Evaluation(cfg, cache_dir=tmp_path)(x_gen=x_gen, z_gen=ae.encode(x_gen), splits=splits,
                                              ae=ae, solver=ExactMixture(splits, ae))
    for key in ("data_w2", "data_w2_floor", "data_w2_ratio", "latent_w2", "latent_w2_floor",
                "recon_w2", "recon_w2_floor", "data_tv", "data_tv_floor", "latent_tv",
                "data_mmd", "data_mmd_floor", "latent_mmd", "nll", "nll_floor", "data_tv_mc",
                "empirical_w2", "empirical_tv"):
        assert math.isfinite(out[key]), key
    assert out["data_w2_method"] == "exact" and out["data_tv_method"] == "histogram"
    # One reference draw makes a noisy floor: perfect samplers score 0.67-1.06 on this target.
    assert 0.5 < out["data_w2_ratio"] < 1.5
    assert out["recon_w2"] < 1e-4  # the identity encoder loses nothing
    assert out["data_tv_mc"] == pytest.approx(0.0, abs=1e-4)  # q = p exactly
    assert out["nll_space"] == "data" and out["nll"] == pytest.approx(out["nll_floor"], rel=1e-4)
    assert set(out["eval_seconds_by_metric"]) == {"w2", "w1", "tv", "mmd", "density",
                                                  "empirical", "verdict"}
    # The floor over reference draws: a perfect sampler's interval covers 1, no false alarm.
    assert out["data_w2_ratio_low"] < 1 < out["data_w2_ratio_high"]
    assert not out["worse_than_reference"] and out["headline"] == "data_mmd2"


def test_harness_separates_a_wrong_sampler_and_caches_floors(tmp_path):
    dataset = {"name": "moons", "n_train": 500, "n_test": 500}
    splits, ae = _setup(dataset, {"name": "identity"}, tmp_path)
    x_gen = splits.test + 1.5
    evaluate = Evaluation(EvalConfig(), cache_dir=tmp_path)
    out = evaluate(x_gen=x_gen, z_gen=ae.encode(x_gen), splits=splits, ae=ae, solver=NoDensity())
    assert out["data_w2_ratio"] > 3 and out["data_tv"] > 2 * out["data_tv_floor"]
    assert out["data_mmd_ratio"] > 3
    assert out["nll"] is None and out["data_tv_mc"] is None
    assert len(list((tmp_path / "floors").glob("*.json"))) == 9  # w2, w1, tv, mmd x 2 spaces
    assert len(list((tmp_path / "floors").glob("draws-*.json"))) == 1  # + the verdict's draws
    again = evaluate(x_gen=x_gen, z_gen=ae.encode(x_gen), splits=splits, ae=ae,
                     solver=NoDensity())
    assert again["data_tv_floor"] == out["data_tv_floor"]


def test_harness_uses_the_classifier_and_latent_nll_beyond_three_dimensions(tmp_path):
    dataset = {"name": "gmm", "dim": 6, "n_train": 400, "n_test": 400}
    splits, ae = _setup(dataset, {"name": "pca", "latent_dim": 4}, tmp_path)

    class Standard:
        has_density = True

        def log_prob(self, z):
            return -0.5 * (z.pow(2).sum(1) + z.shape[1] * math.log(2 * math.pi))

    z_gen = torch.randn(400, 4, generator=torch.Generator().manual_seed(0))
    cfg = EvalConfig(tv_classifier_max_n=400)
    out = Evaluation(cfg, cache_dir=tmp_path)(x_gen=ae.decode(z_gen), z_gen=z_gen,
                                              splits=splits, ae=ae, solver=Standard())
    assert out["data_tv_method"] == "classifier" and out["latent_tv_method"] == "classifier"
    assert len(out["data_tv_ci"]) == 2
    assert out["nll_space"] == "latent" and out["nll_floor"] is None
    assert out["data_tv_mc"] is None  # the pca encoder is not invertible here


@pytest.mark.parametrize("failure", ["raises", "nan"])
def test_harness_keeps_the_job_when_a_density_is_broken(tmp_path, failure):
    dataset = {"name": "gmm", "dim": 2, "n_train": 300, "n_test": 300}
    splits, ae = _setup(dataset, {"name": "identity"}, tmp_path)

    class Broken:
        has_density = True

        def log_prob(self, z):
            if failure == "raises":
                raise RuntimeError("ODE blew up")
            return torch.full((len(z),), math.nan)

    out = Evaluation(EvalConfig(), cache_dir=tmp_path)(
        x_gen=splits.reference, z_gen=ae.encode(splits.reference), splits=splits, ae=ae,
        solver=Broken())
    assert math.isfinite(out["data_w2"]) and out["data_tv_mc"] is None
    if failure == "raises":
        assert out["nll"] is None and "ODE blew up" in out["nll_error"]
    else:
        assert math.isnan(out["nll"]) and "NaN" in out["data_tv_mc_error"]
