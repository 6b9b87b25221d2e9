"""The power table's clear cases at a small size (benchmarks/power.py has the full table)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.power import perturbed, run_dim, target


@pytest.fixture(scope="module", params=[2, 32])
def table(request):
    return run_dim(request.param, n_test=400, n_floor=12, n_null=12, n_perm=49, alpha=0.05,
                   seed=0, n_sets=2)


def test_missing_mode_and_collapse_are_detected(table):
    assert table["cases"]["missing_mode"]["detected"]
    assert table["cases"]["collapse"]["detected"]
    # Collapse shows as lost diversity, not only as distance.
    assert table["cases"]["collapse"]["alone"]["recall"]


def test_identical_laws_are_rarely_flagged(table):
    assert table["false_positive_rate"] <= 2 / 12


def test_perturbations_are_what_they_claim():
    mix = target(3)
    rng = np.random.default_rng(0)
    missing = perturbed("missing_mode", mix, 4000, rng)
    nearest = np.argmin(((missing[:, None] - mix.means[None]) ** 2).sum(-1), axis=1)
    assert 0 not in set(nearest.tolist())
    mean = mix.weights @ mix.means
    exact, scaled = perturbed("exact", mix, 4000, rng), perturbed("scale_1.1", mix, 4000, rng)
    ratio = np.linalg.norm(scaled - mean, axis=1).mean() / np.linalg.norm(exact - mean,
                                                                         axis=1).mean()
    assert ratio == pytest.approx(1.1, rel=0.02)
    with pytest.raises(ValueError, match="allowed"):
        perturbed("nope", mix, 10, rng)
