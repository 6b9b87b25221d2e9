"""The user's own data: ``dataset=file`` (four formats, clear errors), and a plugin data set
and a plugin codec selected by name from the command line (entry points, no YAML)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genbench.core.errors import ConfigError
from genbench.data import build_dataset
from tests.test_registry import _install_fake_distribution

ENV = os.environ | {"OMP_NUM_THREADS": "1"}
TINY = ["experiment=smoke", "dataset.n_train=300", "dataset.n_test=50", "solver.steps=5",
        "solver.sample_steps=5", "progress=false", "eval.plot=false",
        "eval.tv_monte_carlo=false"]


def _points(n: int = 120, d: int = 3) -> np.ndarray:
    rng = np.random.default_rng(7)
    # non-zero mean, anisotropic: a wrong transpose or a re-centring would show
    return rng.normal(size=(n, d)) * [1.0, 3.0, 0.2][:d] + [5.0, -2.0, 0.5][:d]


def _write(path: Path, data: np.ndarray) -> Path:
    suffix = path.suffix
    if suffix == ".npy":
        np.save(path, data)
    elif suffix == ".npz":
        np.savez(path, x=data)
    elif suffix == ".csv":
        header = ",".join(f"c{i}" for i in range(data.shape[1]))
        np.savetxt(path, data, delimiter=",", header=header, comments="")
    else:
        torch.save(torch.as_tensor(data), path)
    return path


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv", ".pt"])
def test_file_dataset_reads_each_format_and_splits_like_finite_sets(tmp_path, suffix):
    data = _points()
    path = _write(tmp_path / f"points{suffix}", data)
    cfg = {"name": "file", "path": str(path), "n_train": 1000, "n_test": 20}
    splits = build_dataset(cfg, seed=0)
    assert splits.train.shape == (80, 3) and splits.test.shape == (20, 3)
    assert splits.reference.shape == (20, 3)
    # a partition of the file's rows: every row once, none invented
    rows = torch.cat([splits.train, splits.test, splits.reference]).double()
    expected = torch.as_tensor(data)
    order = lambda t: t[torch.argsort(t[:, 0])]  # noqa: E731
    assert torch.allclose(order(rows), order(expected), atol=1e-5)
    # the split is fixed by eval_seed, not by the run's seed
    again = build_dataset(cfg, seed=3)
    assert torch.equal(again.test, splits.test) and torch.equal(again.train, splits.train)


def test_the_split_is_the_one_of_the_builtin_finite_sets(tmp_path):
    from genbench.data import DatasetConfig, _split_finite

    data = _points()
    path = _write(tmp_path / "p.npy", data)
    splits = build_dataset({"name": "file", "path": str(path), "n_test": 10}, seed=0)
    train, test, ref = _split_finite(data, DatasetConfig(name="file", n_test=10))
    assert np.allclose(splits.test.numpy(), test) and np.allclose(splits.train.numpy(), train)


@pytest.mark.parametrize("make, message", [
    (lambda p: p.with_suffix(".npy"), "no such file"),
    (lambda p: (p.with_suffix(".txt").write_text("1,2\n"), p.with_suffix(".txt"))[1],
     "unknown extension '.txt'; allowed: .npy, .npz, .csv, .pt"),
    (lambda p: _write(p.with_suffix(".npy"), np.zeros(50)), r"shape \(n, d\), got shape \(50,\)"),
    (lambda p: _write(p.with_suffix(".npy"), np.zeros((4, 5, 2))), r"got shape \(4, 5, 2\)"),
    (lambda p: _write(p.with_suffix(".npy"), np.where(np.arange(60).reshape(30, 2) == 7,
                                                       np.nan, 1.0)), r"1 row\(s\) with NaN"),
    (lambda p: _write(p.with_suffix(".npy"), np.ones((3, 2))), "3 rows; at least 5"),
    (lambda p: (np.savez(p.with_suffix(".npz"), a=np.ones((9, 2)), b=np.ones((9, 2))),
                p.with_suffix(".npz"))[1], r"holds 2 arrays \(a, b\)"),
])
def test_bad_files_fail_with_a_clear_error(tmp_path, make, message):
    path = make(tmp_path / "bad")
    with pytest.raises(ConfigError, match=message):
        build_dataset({"name": "file", "path": str(path), "n_test": 2}, seed=0)


def test_missing_path_and_too_small_n_test(tmp_path):
    with pytest.raises(ConfigError, match="needs dataset.path"):
        build_dataset({"name": "file"}, seed=0)
    path = _write(tmp_path / "p.npy", _points(40))
    with pytest.raises(ConfigError, match="use n_test < 20"):
        build_dataset({"name": "file", "path": str(path), "n_test": 20}, seed=0)


def test_cli_runs_on_a_file_and_fails_before_any_work_on_a_bad_one(tmp_path):
    path = _write(tmp_path / "points.npy", _points(400))
    proc = subprocess.run([sys.executable, "-m", "genbench", "dataset=file",
                           f"dataset.path={path}", *TINY, f"hydra.run.dir={tmp_path}/ok"],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads((tmp_path / "ok" / "results.json").read_text())
    assert result["status"] == "ok" and result["metrics"]["n_train"] == 300
    bad = subprocess.run([sys.executable, "-m", "genbench", "dataset=file",
                          f"dataset.path={tmp_path}/nope.npy", *TINY,
                          f"hydra.run.dir={tmp_path}/bad"],
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert bad.returncode == 1
    result = json.loads((tmp_path / "bad" / "results.json").read_text())
    assert result["error_type"] == "ConfigError" and "no such file" in result["error"]
    assert not (tmp_path / "bad" / "model.pt").exists()


PLUGIN = """
    import numpy as np
    import torch
    from dataclasses import dataclass

    from genbench.codecs import LinearCodec
    from genbench.data import DatasetFamily


    class Ring:
        '''A plugin target: a circle of radius r around (1, 1), plus a known density.'''

        def __init__(self, params):
            self.radius = params.radius

        def sample(self, n, rng):
            angle = rng.uniform(0, 2 * np.pi, n)
            noise = rng.normal(scale=0.05, size=n)
            radius = (self.radius + noise)[:, None]
            return np.stack([np.cos(angle), np.sin(angle)], 1) * radius + 1.0


    @dataclass
    class RingParams:
        radius: float = 3.0


    ring = DatasetFamily(Ring, RingParams)


    class Swap(LinearCodec):
        '''A user codec: swaps the two coordinates; counts its fits in a file.'''

        @classmethod
        def resolve_latent_dim(cls, config, data_dim):
            return data_dim

        def _fit_raw(self, x):
            import os
            with open(os.environ["SWAP_FITS"], "a") as fh:
                fh.write("fit\\n")
            self.components.copy_(torch.eye(self.data_dim)[[1, 0, *range(2, self.data_dim)]])
            return {}
"""


def test_plugin_dataset_and_codec_from_the_cli_with_a_cached_encoder(tmp_path):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    _install_fake_distribution(plugin, "[genbench.datasets]\nring = fake_own_plugin:ring\n"
                               "[genbench.codecs]\nswap = fake_own_plugin:Swap\n",
                               {"fake_own_plugin": PLUGIN})
    fits = tmp_path / "fits.txt"
    env = ENV | {"PYTHONPATH": str(plugin), "SWAP_FITS": str(fits),
                 "GENBENCH_CACHE_DIR": str(tmp_path / "cache")}
    results = []
    for job in ("a", "b"):
        proc = subprocess.run(
            [sys.executable, "-m", "genbench", "dataset=ring", "dataset.radius=2.5",
             "autoencoder=swap", *TINY, f"seed={0 if job == 'a' else 1}",
             f"hydra.run.dir={tmp_path}/{job}"],
            capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        results.append(json.loads((tmp_path / job / "results.json").read_text()))
    first, second = results
    assert first["dataset"] == "ring" and first["autoencoder"] == "swap"
    assert first["config"]["dataset"]["radius"] == 2.5
    assert first["autoencoder_info"]["cache_hit"] is False
    assert second["autoencoder_info"]["cache_hit"] is True, "the second job reuses the encoder"
    assert second["autoencoder_info"]["key"] == first["autoencoder_info"]["key"]
    assert fits.read_text().count("fit") == 1, "fitted once, frozen and shared"
    # the test points come from the plugin's sampler: radius 2.5 around (1, 1)
    test = np.load(tmp_path / "a" / "samples.npz")["x_test"]
    assert abs(np.linalg.norm(test - 1.0, axis=1).mean() - 2.5) < 0.05
