"""Exact W1 (Euclidean cost) against closed forms, and its place in the harness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genbench.codecs import get_autoencoder
from genbench.core.config import EvalConfig
from genbench.data import build_dataset
from genbench.eval.harness import Evaluation
from genbench.eval.metrics import w1, w2


def test_exact_w1_in_one_dimension_is_the_mean_gap_of_sorted_samples():
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 1.0, (300, 1))
    y = rng.gamma(2.0, 0.8, (300, 1))  # another law, skewed: no symmetry to hide behind
    expected = np.abs(np.sort(x[:, 0]) - np.sort(y[:, 0])).mean()
    value, method = w1(x, y)
    assert method == "exact"
    assert value == pytest.approx(expected, rel=1e-9)
    # W2 (squared cost, square root) is a different, larger number here.
    assert w2(x, y)[0] > value + 0.02


def test_exact_w1_of_a_shift_is_the_shift_length():
    rng = np.random.default_rng(1)
    cov = np.array([[2.0, 0.6, 0.0], [0.6, 0.5, 0.1], [0.0, 0.1, 1.5]])
    x = rng.multivariate_normal([1.0, -2.0, 0.5], cov, 400)
    shift = np.array([0.3, -0.4, 1.2])  # |shift| = 1.3
    value, _ = w1(x, x + shift)
    assert value == pytest.approx(1.3, rel=1e-6)
    # W2 of a pure shift is the same length: the squared-cost solver agrees.
    assert w2(x, x + shift)[0] == pytest.approx(1.3, rel=1e-6)


def test_w1_is_zero_for_a_sample_against_itself_and_symmetric():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(200, 2)), rng.normal(size=(150, 2)) + 0.5
    assert w1(x, x)[0] == pytest.approx(0.0, abs=1e-10)
    assert w1(x, y)[0] == pytest.approx(w1(y, x)[0], rel=1e-9)


def test_w1_switches_to_sliced_beyond_max_exact_and_sliced_is_exact_in_1d():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(120, 1)), rng.normal(1.0, 2.0, size=(120, 1))
    exact, _ = w1(x, y)
    value, method = w1(x, y, max_exact=100)
    assert method == "sliced"
    assert value == pytest.approx(exact, rel=1e-9)  # one direction in 1-D: the same problem


@pytest.mark.parametrize(("x", "y", "match"), [
    (np.zeros((3,)), np.zeros((3, 1)), "shape"),
    (np.zeros((3, 2)), np.zeros((3, 1)), "dimension"),
    (np.full((3, 1), np.nan), np.zeros((3, 1)), "NaN"),
])
def test_w1_rejects_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        w1(x, y)


def test_w1_rejects_unknown_methods():
    with pytest.raises(ValueError, match="exact"):
        w1(np.zeros((2, 1)), np.zeros((2, 1)), method="sinkhorn")


def test_harness_reports_w1_with_its_floor_and_for_the_memoriser(tmp_path):
    dataset = {"name": "moons", "n_train": 400, "n_test": 400}
    splits = build_dataset(dataset, seed=0)
    ae, _ = get_autoencoder({"name": "identity"}, dataset, tmp_path)
    x_gen = splits.test + torch.tensor([0.6, -0.8], dtype=splits.test.dtype)  # |shift| = 1
    out = Evaluation(EvalConfig(empirical_baseline=True), cache_dir=tmp_path)(
        x_gen=x_gen, z_gen=ae.encode(x_gen), splits=splits, ae=ae, solver=None)
    assert out["data_w1"] == pytest.approx(1.0, rel=1e-5)  # scored against the test points
    assert out["data_w1_method"] == "exact"
    expected_floor = w1(splits.test, splits.reference)[0]
    assert out["data_w1_floor"] == pytest.approx(expected_floor, rel=1e-9)
    assert out["data_w1_ratio"] == pytest.approx(1.0 / expected_floor, rel=1e-5)
    assert out["empirical_w1"] == pytest.approx(w1(splits.train, splits.test)[0], rel=1e-9)
    assert math.isfinite(out["latent_w1"]) and "w1" in out["eval_seconds_by_metric"]
