"""End to end: one job through pipeline.run and through the `genbench` command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from genbench.run.pipeline import RESULTS_FILE, SAMPLES_FILE, resolve_device, run
from genbench.sweep.schemas import register_schemas
from tests.conftest import CONFIG_DIR

register_schemas()


def compose_run(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


@pytest.fixture(scope="module")
def smoke_job(tmp_path_factory):
    out = tmp_path_factory.mktemp("job")
    cfg = compose_run(["experiment=smoke", "progress=false", "solver.sample_steps=50"])
    return cfg, out, run(cfg, out)


def test_smoke_run_writes_results_and_samples(smoke_job):
    _, out, result = smoke_job
    assert result["status"] == "ok", result.get("traceback")
    saved = json.loads((out / RESULTS_FILE).read_text())
    assert saved["status"] == "ok" and saved["solver"] == "ddpm" and saved["dataset"] == "moons"
    m = saved["metrics"]
    for key in ("data_w2", "data_w2_floor", "data_w2_ratio", "latent_w2", "latent_w2_floor",
                "recon_w2", "nfe", "train_seconds", "sample_seconds"):
        assert key in m and m[key] is not None, key
    assert m["data_w2_ratio"] == pytest.approx(m["data_w2"] / m["data_w2_floor"])
    assert m["nfe"] == 50 and m["n_eval"] == 500
    assert m["recon_w2"] < 1e-3  # identity encoder-decoder
    samples = np.load(out / SAMPLES_FILE)
    assert samples["x_gen"].shape == (500, 2) and samples["z_gen"].shape == (500, 2)
    assert (out / "samples.png").stat().st_size > 1000
    assert saved["train"]["loss_curve"], "the training curve is kept"
    assert not list(out.glob(".*.tmp")), "no temporary file is left behind"


def test_metrics_can_be_recomputed_from_saved_samples(smoke_job):
    from genbench.eval.metrics import w2

    _, out, result = smoke_job
    samples = np.load(out / SAMPLES_FILE)
    value, _ = w2(samples["x_gen"], samples["x_test"])
    assert value == pytest.approx(result["metrics"]["data_w2"], rel=1e-6)


def test_same_config_and_seed_give_the_same_numbers(smoke_job, tmp_path):
    cfg, _, result = smoke_job
    again = run(cfg, tmp_path)
    assert again["metrics"]["data_w2"] == pytest.approx(result["metrics"]["data_w2"], rel=1e-9)


def test_resume_skips_a_finished_job(smoke_job):
    cfg, out, result = smoke_job
    again = run(cfg, out)
    assert again.get("skipped") is True
    assert again["metrics"] == result["metrics"]


def test_resume_reruns_when_the_config_changed(smoke_job, tmp_path):
    cfg, finished, _ = smoke_job
    out = tmp_path / "job"
    shutil.copytree(finished, out)
    changed = cfg.copy()
    changed.solver.steps = 5
    changed.solver.sample_steps = 5
    rerun = run(changed, out)
    assert not rerun.get("skipped") and rerun["status"] == "ok"
    assert rerun["config"]["solver"]["steps"] == 5


def test_a_failing_job_records_its_error(tmp_path):
    cfg = compose_run(["experiment=smoke", "progress=false", "solver.name=nope"])
    result = run(cfg, tmp_path)
    assert result["status"] == "failed"
    assert "nope" in result["error"] and "ddpm" in result["error"]
    assert json.loads((tmp_path / RESULTS_FILE).read_text())["status"] == "failed"
    # A failed result is not taken as finished: the next run tries again.
    cfg.solver.name = "ddpm"
    cfg.solver.steps = 5
    cfg.solver.sample_steps = 5
    assert run(cfg, tmp_path)["status"] == "ok"


def test_divergence_is_detected_and_reported(tmp_path):
    cfg = compose_run(["experiment=smoke", "progress=false", "solver.lr=1e12",
                       "solver.grad_clip=0", "solver.log_every=5", "solver.sample_steps=5"])
    result = run(cfg, tmp_path)
    assert result["status"] == "failed"
    assert result["error_type"] == "DivergenceError"


def test_device_resolution():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_cli_runs_one_job(tmp_path):
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "genbench.sweep.cli", "experiment=smoke", "progress=false",
           "solver.steps=30", "solver.sample_steps=10", f"hydra.run.dir={tmp_path}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "W2 data" in proc.stdout and "ratio" in proc.stdout
    assert json.loads((tmp_path / RESULTS_FILE).read_text())["status"] == "ok"
    bad = subprocess.run(cmd[:-1] + [f"hydra.run.dir={tmp_path}/bad", "solver.name=nope"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 1 and "registered solvers" in bad.stdout
