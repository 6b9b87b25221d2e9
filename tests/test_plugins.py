"""The one Registry mechanism, and the data set and codec registries built on it."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from genbench.codecs import CODECS, AutoencoderConfig, build_codec
from genbench.core.errors import ConfigError, UnknownNameError
from genbench.core.registry import Registry
from genbench.data import DATASETS, build_dataset
from tests.test_registry import _install_fake_distribution


def test_registry_decorator_lookup_duplicates_and_types():
    reg: Registry[type] = Registry("widget", "genbench.test_widgets",
                                   accepts=lambda obj: isinstance(obj, type), describe="class")

    @reg.register("a")
    class A:
        pass

    assert reg.get("a") is A and reg.names() == ["a"] and "a" in reg
    reg.register("a")(A)  # the same object again is harmless (a module imported twice)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(type("B", (), {}))
    with pytest.raises(TypeError, match="must be a class"):
        reg.register("c")(42)
    with pytest.raises(ValueError, match="name"):
        reg.register("bad name")
    with pytest.raises(UnknownNameError, match="unknown widget 'z'; registered widgets: a"):
        reg.get("z")


@pytest.mark.parametrize("registry, kind", [(DATASETS, "dataset"), (CODECS, "codec")])
def test_unknown_name_lists_the_registered_ones(registry, kind):
    with pytest.raises(UnknownNameError) as info:
        registry.get("no_such_thing")
    message = str(info.value)
    assert f"unknown {kind} 'no_such_thing'" in message
    assert all(name in message for name in registry.names())
    assert isinstance(info.value, ConfigError)  # a config error for the CLI, a KeyError too


def test_builtins_register_like_plugins():
    assert {"moons", "8gaussians", "gmm", "manifold", "digits"} <= set(DATASETS.names())
    assert CODECS.names() == ["identity", "mlp", "pca"]
    with pytest.raises(ConfigError, match="unknown dataset 'nope'"):
        build_dataset({"name": "nope"}, seed=0)


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    saved = {DATASETS: DATASETS.snapshot(), CODECS: CODECS.snapshot()}
    yield tmp_path
    monkeypatch.undo()
    for reg, entries in saved.items():
        reg.restore(entries)
        reg.reload()
    for mod in ("fake_dataset_plugin", "fake_codec_plugin"):
        sys.modules.pop(mod, None)


DATASET_PLUGIN = """
    import numpy as np
    from genbench.data import DatasetFamily

    def _ring(n, rng):
        angle = rng.uniform(0, 2 * np.pi, n)
        return np.stack([np.cos(angle), np.sin(angle)], 1) * 3.0 + 1.0

    ring = DatasetFamily(lambda params: _ring)
"""


def test_entry_point_dataset_is_found(plugin_dir):
    _install_fake_distribution(plugin_dir, "[genbench.datasets]\nring = fake_dataset_plugin:ring\n",
                               {"fake_dataset_plugin": DATASET_PLUGIN})
    DATASETS.reload()
    assert "ring" in DATASETS.names()
    splits = build_dataset({"name": "ring", "n_train": 50, "n_test": 10}, seed=0)
    radius = (splits.train - 1.0).norm(dim=1)
    assert splits.train.shape == (50, 2) and torch.allclose(radius, torch.full((50,), 3.0))


CODEC_PLUGIN = """
    import torch
    from genbench.codecs import LinearCodec

    class Swap(LinearCodec):
        '''Swaps the first two coordinates: affine and invertible.'''

        @classmethod
        def resolve_latent_dim(cls, config, data_dim):
            return data_dim

        @property
        def is_affine(self):
            return True

        def _fit_raw(self, x):
            self.components.copy_(torch.eye(self.data_dim)[[1, 0, *range(2, self.data_dim)]])
            return {}
"""


def test_entry_point_codec_is_found(plugin_dir):
    _install_fake_distribution(plugin_dir, "[genbench.codecs]\nswap = fake_codec_plugin:Swap\n",
                               {"fake_codec_plugin": CODEC_PLUGIN})
    CODECS.reload()
    assert "swap" in CODECS.names()
    codec = build_codec(AutoencoderConfig(name="swap", standardize=False), 3)
    assert type(codec).name == "swap"
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(20, 3)) + [5.0, -2.0, 0.5],
                        dtype=torch.float32)
    codec.fit(x)
    assert torch.allclose(codec.encode(x), x[:, [1, 0, 2]])
    assert torch.allclose(codec.decode(codec.encode(x)), x)
