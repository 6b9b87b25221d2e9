"""The shared encoder-decoder: round trips, standardised latents, and the disk cache."""

from __future__ import annotations

import pytest
import torch

from genbench.codecs import AutoEncoder, AutoencoderConfig, build_codec, get_autoencoder
from genbench.core.config import ConfigError

MOONS = {"name": "moons", "n_train": 1000, "n_test": 100}


def test_identity_round_trip_and_standardised_latents(tmp_path):
    ae, info = get_autoencoder({"name": "identity"}, MOONS, tmp_path)
    x = torch.randn(50, 2) * 3 + 1
    torch.testing.assert_close(ae.decode(ae.encode(x)), x, atol=1e-5, rtol=1e-5)
    assert ae.latent_dim == 2 and ae.is_affine and info["cache_hit"] is False
    # The source latents have zero mean and unit scale.
    from genbench.data import build_dataset

    z = ae.encode(build_dataset(MOONS, seed=0).train)
    torch.testing.assert_close(z.mean(0), torch.zeros(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(2), atol=1e-4, rtol=0)


def test_pca_keeps_the_leading_directions(tmp_path):
    cfg = {"name": "manifold", "n_train": 2000, "n_test": 10, "ambient_dim": 12}
    ae, _ = get_autoencoder({"name": "pca", "latent_dim": 6}, cfg, tmp_path)
    from genbench.data import build_dataset

    x = build_dataset(cfg, seed=3).train
    # The manifold spans six directions of R^12, so six components reconstruct it exactly.
    torch.testing.assert_close(ae.decode(ae.encode(x)), x, atol=1e-4, rtol=1e-4)
    assert not ae.is_affine


def test_mlp_autoencoder_learns_to_reconstruct(tmp_path):
    cfg = {"name": "mlp", "latent_dim": 2, "steps": 400, "hidden": 64, "depth": 2}
    ae, info = get_autoencoder(cfg, MOONS, tmp_path)
    from genbench.data import build_dataset

    x = build_dataset(MOONS, seed=5).test
    err = (ae.decode(ae.encode(x)) - x).pow(2).mean()
    assert float(err) < 0.1 * float(x.var(0).sum())
    assert all(not p.requires_grad for p in ae.parameters())
    assert "recon_mse" in info


def test_cache_hit_is_reported_and_skips_training(tmp_path, monkeypatch):
    cfg = {"name": "mlp", "latent_dim": 2, "steps": 50, "hidden": 16, "depth": 1}
    first, info1 = get_autoencoder(cfg, MOONS, tmp_path)
    assert info1["cache_hit"] is False

    def no_training(self, x):
        raise AssertionError("a cache hit must not train")

    monkeypatch.setattr(AutoEncoder, "fit", no_training)
    second, info2 = get_autoencoder(cfg, MOONS, tmp_path)
    assert info2["cache_hit"] is True and info2["path"] == info1["path"]
    x = torch.randn(8, 2)
    torch.testing.assert_close(second.decode(second.encode(x)), first.decode(first.encode(x)))
    # Another configuration or another source is another cache entry.
    monkeypatch.undo()
    _, other_seed = get_autoencoder(cfg | {"seed": 1}, MOONS, tmp_path)
    _, other_source = get_autoencoder(cfg | {"source": {"name": "circles", "n_train": 500}},
                                      MOONS, tmp_path)
    assert len({info1["key"], other_seed["key"], other_source["key"]}) == 3
    assert other_source["source"] == "circles"


def test_corrupt_cache_is_refitted(tmp_path):
    _, info = get_autoencoder({"name": "pca", "latent_dim": 1}, MOONS, tmp_path)
    with open(info["path"], "wb") as fh:
        fh.write(b"not a checkpoint")
    _, again = get_autoencoder({"name": "pca", "latent_dim": 1}, MOONS, tmp_path)
    assert again["cache_hit"] is False


def test_bad_configs_fail_clearly(tmp_path):
    with pytest.raises(ConfigError, match="unknown autoencoder"):
        get_autoencoder({"name": "vae"}, MOONS, tmp_path)
    with pytest.raises(ConfigError, match="latent_dim"):
        get_autoencoder({"name": "identity", "latent_dim": 3}, MOONS, tmp_path)
    with pytest.raises(ConfigError, match="exceeds"):
        get_autoencoder({"name": "pca", "latent_dim": 5}, MOONS, tmp_path)
    ae = build_codec(AutoencoderConfig(name="identity"), 2)
    with pytest.raises(ConfigError, match=r"\(n, 2\)"):
        ae.encode(torch.zeros(3, 4))
