"""Data sets: shapes, seeding, fixed evaluation splits, exact mixture densities, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genbench.core.config import ConfigError
from genbench.data import DATASETS, build_dataset, list_datasets
from genbench.data.manifold import EmbeddedManifold, ManifoldParams
from genbench.data.mixtures import GaussianMixture, MixtureParams, eight_gaussians, random_mixture


@pytest.mark.parametrize("name", [n for n in DATASETS if n not in ("digits", "file")])
def test_samplable_sets_have_the_requested_shapes(name):
    splits = build_dataset({"name": name, "n_train": 300, "n_test": 100}, seed=0)
    assert splits.train.shape[0] == 300
    assert splits.test.shape == splits.reference.shape == (100, splits.dim)
    assert splits.train.dtype == torch.float32
    for part in (splits.train, splits.test, splits.reference):
        assert torch.isfinite(part).all()


def test_training_split_follows_the_seed_and_test_split_does_not():
    cfg = {"name": "moons", "n_train": 200, "n_test": 100}
    a, b, c = build_dataset(cfg, seed=0), build_dataset(cfg, seed=0), build_dataset(cfg, seed=1)
    torch.testing.assert_close(a.train, b.train)
    assert not torch.allclose(a.train, c.train)
    # every seed and every solver is scored on the same held-out points
    torch.testing.assert_close(a.test, c.test)
    assert not torch.allclose(a.test, a.reference)


def test_digits_are_fixed_disjoint_splits():
    splits = build_dataset({"name": "digits", "n_test": 300}, seed=0)
    assert splits.dim == 64
    assert len(splits.train) == 1797 - 600
    assert float(splits.train.min()) >= 0.0 and float(splits.train.max()) <= 1.0
    # the three splits partition the 1,797 images: together they hold every image once
    everything = torch.cat([splits.train, splits.test, splits.reference]).double()
    original = torch.as_tensor(__import__("sklearn.datasets").datasets.load_digits().data) / 16
    assert torch.allclose(everything.sum(0), original.sum(0))
    with pytest.raises(ConfigError, match="n_test"):
        build_dataset({"name": "digits", "n_test": 1000}, seed=0)


def test_manifold_has_its_intrinsic_dimension():
    cfg = {"name": "manifold", "n_train": 2000, "n_test": 10, "intrinsic_dim": 2,
           "ambient_dim": 12}
    x = build_dataset(cfg, seed=0).train.double()
    # The curved features span 3k = 6 directions of R^12; the rest is empty.
    sv = torch.linalg.svdvals(x - x.mean(0))
    assert x.shape[1] == 12
    assert float(sv[6:].max()) < 1e-6 * float(sv[0])
    # Local neighbourhoods are 2-dimensional: tiny patches are almost flat planes.
    centre = x[0]
    near = x[(x - centre).norm(dim=1).argsort()[:30]]
    local = torch.linalg.svdvals(near - near.mean(0))
    assert float(local[2]) < 0.2 * float(local[1])


def _local_rank(manifold: EmbeddedManifold, k: int, n_centres: int = 20,
                radius: float = 1e-3) -> list[int]:
    """Local PCA rank at random points: the singular values of a tiny patch around each,
    counted above 1e-3 x the largest (the curvature's share is ~radius, far below)."""
    rng = np.random.default_rng(7)
    ranks = []
    for centre in rng.uniform(-0.9, 0.9, (n_centres, k)):
        patch = manifold.embed(centre + radius * rng.uniform(-1, 1, (200, k)))
        sv = np.linalg.svd(patch - patch.mean(0), compute_uv=False)
        ranks.append(int((sv > 1e-3 * sv[0]).sum()))
    return ranks


@pytest.mark.parametrize(("embedding", "k", "d"), [("features", 1, 16), ("features", 3, 64),
                                                   ("mlp", 2, 128), ("mlp", 4, 32)])
def test_manifold_family_intrinsic_and_embedding_dimension(embedding, k, d):
    cfg = {"name": "manifold", "n_train": 5000, "n_test": 10, "intrinsic_dim": k,
           "ambient_dim": d, "embedding": embedding}
    x = build_dataset(cfg, seed=0).train.double()
    assert x.shape == (5000, d)
    # Linear span: 3k for the features, min(width, D) = 16 for the random network.
    span = 3 * k if embedding == "features" else 16
    sv = torch.linalg.svdvals(x - x.mean(0))
    assert float(sv[span - 1]) > 1e-4 * float(sv[0])
    if span < d:
        assert float(sv[span:].max()) < 1e-6 * float(sv[0])
    # Intrinsic dimension: small patches are k-dimensional (local PCA rank) everywhere,
    # however many directions the whole sample spans: the map is curved, not linear.
    params = ManifoldParams(intrinsic_dim=k, ambient_dim=d, embedding=embedding)
    assert _local_rank(EmbeddedManifold(params), k) == [k] * 20
    assert span > k


def test_manifold_mlp_embedding_is_fixed_by_its_seed_and_checks_its_dimensions():
    base = {"name": "manifold", "n_train": 50, "n_test": 10, "embedding": "mlp",
            "ambient_dim": 32}
    a = build_dataset(base, seed=0).train
    assert torch.equal(a, build_dataset(base, seed=0).train)
    assert not torch.equal(a, build_dataset(base | {"embed_seed": 1}, seed=0).train)
    with pytest.raises(ConfigError, match="intrinsic_dim < min"):
        build_dataset(base | {"intrinsic_dim": 16}, seed=0)
    with pytest.raises(ConfigError, match="embedding"):
        build_dataset(base | {"embedding": "torus"}, seed=0)


@pytest.mark.parametrize(
    "mixture",
    [eight_gaussians(), random_mixture(MixtureParams(dim=2, n_components=3, radius=2.0, std=0.7))],
    ids=["8gaussians", "gmm"],
)
def test_mixture_density_integrates_to_one_in_2d(mixture: GaussianMixture):
    lo, hi, n = -9.0, 9.0, 601
    grid = torch.linspace(lo, hi, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    cell = ((hi - lo) / (n - 1)) ** 2
    mass = float(mixture.log_prob(points).exp().sum() * cell)
    assert mass == pytest.approx(1.0, abs=2e-3)


def test_mixture_log_prob_matches_a_single_gaussian():
    mixture = GaussianMixture(np.array([[1.0, -2.0, 0.5]]), std=0.5)
    x = torch.randn(5, 3, dtype=torch.float64)
    expected = torch.distributions.Normal(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64),
                                          0.5).log_prob(x).sum(1)
    torch.testing.assert_close(mixture.log_prob(x), expected)


def test_gmm_in_higher_dimension_has_exact_density():
    splits = build_dataset({"name": "gmm", "dim": 6, "n_train": 100, "n_test": 50}, seed=0)
    assert splits.dim == 6 and splits.log_prob is not None
    lp = splits.log_prob(splits.test)
    assert lp.shape == (50,) and torch.isfinite(lp).all()
    # log-density at the sample is below the density at the mode of a unit-weight component
    assert float(lp.max()) < -0.5 * 6 * math.log(2 * math.pi * 0.5**2) + 1e-9


def test_unknown_dataset_and_keys_fail_clearly():
    with pytest.raises(ConfigError) as info:
        build_dataset({"name": "mnist"}, seed=0)
    assert all(name in str(info.value) for name in list_datasets())
    with pytest.raises(ConfigError, match="unknown key.*dimm"):
        build_dataset({"name": "gmm", "dimm": 3}, seed=0)
    with pytest.raises(ConfigError, match="n_train"):
        build_dataset({"name": "moons", "n_train": 0}, seed=0)
