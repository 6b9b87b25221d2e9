"""The floor draws' cost savers: the cache lock, parallel workers, test-side terms computed
once, fewer draws for the latent ratios; none may change a number the verdict reads."""

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pytest
import torch

import genbench.eval.draws as draws_module
from genbench.codecs import get_autoencoder
from genbench.core.config import EvalConfig
from genbench.data import build_dataset
from genbench.eval.draws import SD_DRAWS, floor_draws, held_out
from genbench.eval.floors import cached_floor
from genbench.eval.metrics.prdc import knn_radii, prdc
from genbench.eval.verdict import verdict


@pytest.fixture(scope="module")
def gmm():
    return build_dataset({"name": "gmm", "dim": 3, "n_test": 120, "n_train": 400}, seed=0)


def _together(n: int, fn) -> list:
    """``fn()`` on ``n`` threads released at once; their results (errors re-raised)."""
    barrier, out, errors = threading.Barrier(n), [None] * n, []

    def run(i: int) -> None:
        try:
            barrier.wait()
            out[i] = fn()
        except Exception as err:  # noqa: BLE001 - surfaced below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


def test_concurrent_jobs_on_a_cold_cache_compute_a_floor_once(tmp_path):
    calls = []
    x = torch.arange(12.0).reshape(6, 2)

    def compute() -> dict:
        calls.append(1)
        # Long enough that an unlocked second caller would miss the cache and compute too.
        threading.Event().wait(0.3)
        return {"value": float(len(calls))}

    out = _together(3, lambda: cached_floor("w2", compute, x, x + 1, {"k": 1}, tmp_path))
    assert len(calls) == 1
    assert out == [{"value": 1.0}] * 3
    assert list((tmp_path / "floors").glob("w2-*.json.lock"))


def test_two_jobs_computing_the_same_floor_draws_score_them_once(gmm, tmp_path, monkeypatch):
    scored = []
    real = draws_module.sample_scores

    def counting(*args, **kwargs):
        scored.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(draws_module, "sample_scores", counting)
    cfg = EvalConfig(floor_draws=6, floor_workers=2, bootstrap=100)
    side = held_out(gmm.test, cfg)
    a, b = _together(2, lambda: floor_draws(gmm, cfg, side, tmp_path))
    assert len(scored) == 6  # one job's draws; the other waited and read them
    assert a == b and len(a["data_w2"]) == 6


def test_the_draws_do_not_depend_on_the_number_of_workers(gmm):
    results = []
    for workers in (1, 3):
        cfg = EvalConfig(floor_draws=5, floor_workers=workers, bootstrap=100)
        results.append(floor_draws(gmm, cfg, held_out(gmm.test, cfg), None))
    assert results[0] == results[1]
    assert len(set(results[0]["data_w2"])) == 5


def test_latent_ratios_get_sd_draws_and_the_rank_test_all_draws(gmm, tmp_path):
    ae, _ = get_autoencoder({"name": "identity"}, {"name": "gmm", "dim": 3}, tmp_path)
    z_test = ae.encode(gmm.test)
    assert not torch.equal(z_test, gmm.test)  # standardised: the latent draws are their own
    n = SD_DRAWS + 5
    x = torch.as_tensor(gmm.sampler(120, np.random.default_rng(3)), dtype=torch.float32)
    out = verdict(x, gmm, EvalConfig(floor_draws=n, bootstrap=100), tmp_path,
                  latent=(ae.encode, z_test, 1.0, 0.1))
    cached = json.loads(next((tmp_path / "floors").glob("draws-*.json")).read_text())
    assert len(cached["data_w2"]) == len(cached["data_coverage"]) == n
    assert len(cached["latent_w2"]) == len(cached["latent_mmd"]) == SD_DRAWS
    assert out["latent_w2_floor_n"] == SD_DRAWS and out["data_w2_floor_n"] == n
    assert out["latent_w2_floor"] == pytest.approx(np.mean(cached["latent_w2"]))
    # The latent draws are the first SD_DRAWS draws' encodings: draw 0 is the split's own
    # reference sample, so its latent W2 is the one-draw latent floor.
    from genbench.eval.floors import w2_settings
    from genbench.eval.metrics.w2 import w2
    first = w2(ae.encode(gmm.reference).double(), z_test.double(),
               **w2_settings(EvalConfig()))[0]
    assert cached["latent_w2"][0] == pytest.approx(first, rel=1e-9)


def test_a_codec_that_encodes_to_the_data_gets_no_latent_draws(gmm, tmp_path):
    cfg = EvalConfig(floor_draws=4, bootstrap=100)
    x = torch.as_tensor(gmm.sampler(120, np.random.default_rng(4)), dtype=torch.float32)
    out = verdict(x, gmm, cfg, tmp_path, latent=(lambda t: t, gmm.test, 0.9, 0.1))
    cached = json.loads(next((tmp_path / "floors").glob("draws-*.json")).read_text())
    assert "latent_w2" not in cached
    assert out["latent_w2_floor"] == out["data_w2_floor"]


def test_prdc_with_precomputed_real_radii_is_prdc():
    rng = np.random.default_rng(0)
    real = torch.as_tensor(rng.standard_normal((300, 3)) * [1.0, 2.0, 0.5] + 1.0)
    gen = torch.as_tensor(rng.standard_normal((250, 3)) * 1.3)
    plain, given = prdc(gen, real, k=4), prdc(gen, real, k=4, real_radii=knn_radii(real, 4))
    assert plain.scores() == given.scores()
    # An oracle for the radius: the 4th smallest distance to the other points, by sorting.
    d = torch.cdist(real, real)
    assert torch.equal(knn_radii(real, 4), d.sort(dim=1).values[:, 4])
    with pytest.raises(ValueError, match="real_radii must have shape"):
        prdc(gen, real, k=4, real_radii=torch.ones(5))


@pytest.mark.parametrize("bad", [-1, True])
def test_floor_workers_is_validated(bad):
    with pytest.raises(ValueError, match="floor_workers"):
        EvalConfig(floor_workers=bad)
    assert dataclasses.replace(EvalConfig(), floor_workers=3).floor_workers == 3


def test_a_failing_draw_fails_the_floor_and_restores_the_thread_settings(gmm, monkeypatch):
    def broken(x, *args, **kwargs):
        raise RuntimeError("draw failed")

    monkeypatch.setattr(draws_module, "sample_scores", broken)
    threads = torch.get_num_threads()
    cfg = EvalConfig(floor_draws=8, floor_workers=2, bootstrap=100)
    side = held_out(gmm.test, cfg)
    torch.set_num_threads(3)  # the draws run at one; the caller's setting must come back
    try:
        with pytest.raises(RuntimeError, match="draw failed"):
            floor_draws(gmm, cfg, side, None)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)
