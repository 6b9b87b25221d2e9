"""Real multiruns (``genbench -m``) through Hydra's launchers, with failing jobs and resume.

Each sweep runs the `genbench` command in a subprocess with tiny jobs (500 training points,
50 steps), its sweep folder and caches under the test's temporary folder. A sweep mixes a
job that succeeds with one that fails (a diverging learning rate, an unknown solver): the
failure is recorded in its own results.json and every other result survives. The SLURM
preset's code path (submitit) runs through submitit's local executor.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import genbench.sweep.cli
from genbench.sweep.callback import LAUNCHER_PLUGINS, job_line, missing_launcher_hint, sweep_id
from genbench.sweep.schemas import register_schemas
from tests.conftest import CONFIG_DIR

register_schemas()
TINY = ["experiment=smoke", "dataset.n_train=500", "dataset.n_test=200", "solver.steps=50",
        "solver.sample_steps=20", "progress=false", "eval.plot=false"]
NO_PLOTS = "hydra.callbacks.sweep.plots=false"


def run_genbench(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    return subprocess.run([sys.executable, "-m", "genbench.sweep.cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def multirun(sweep_dir: Path, *overrides: str, failed: int = 0) -> subprocess.CompletedProcess:
    """Run a sweep; with ``failed`` jobs expected to fail, it must exit 1 saying how many."""
    proc = run_genbench("-m", *TINY, *overrides, f"hydra.sweep.dir={sweep_dir}")
    assert proc.returncode == (1 if failed else 0), proc.stdout[-3000:] + proc.stderr[-3000:]
    if failed:
        assert [s for s in proc.stderr.splitlines() if s.startswith(f"genbench: {failed} of ")]
    return proc


def results(sweep_dir: Path) -> dict[str, dict]:
    """Each job's results.json, keyed by its folder name."""
    return {p.parent.name: json.loads(p.read_text())
            for p in sweep_dir.glob("*/results.json")}


def by_status(found: dict[str, dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"ok": [], "failed": []}
    for result in found.values():
        out[result["status"]].append(result)
    return out


@pytest.fixture(scope="module")
def failing_sweep(tmp_path_factory):
    sweep = tmp_path_factory.mktemp("sweep")
    return sweep, multirun(sweep, "solver.lr=0.002,1e12", failed=1)


def test_a_failing_job_is_recorded_and_the_sweep_carries_on(failing_sweep):
    sweep, proc = failing_sweep
    jobs = by_status(results(sweep))
    assert len(jobs["ok"]) == 1 and len(jobs["failed"]) == 1
    (ok,), (failed,) = jobs["ok"], jobs["failed"]
    assert ok["metrics"]["data_w2_ratio"] > 0 and ok["config"]["solver"]["lr"] == 0.002
    assert failed["error_type"] == "DivergenceError" and "non-finite" in failed["error"]
    assert "Traceback" in failed["traceback"] and failed["config"]["solver"]["lr"] == 1e12
    # one line per job, then the leaderboard written by the end-of-sweep callback
    assert "job 0: ok ddpm-moons-s0: W2/floor" in proc.stdout
    assert "job 1: FAILED ddpm-moons-s0: DivergenceError" in proc.stdout
    assert "sweep done: 2 jobs: 1 ok, 1 failed" in proc.stdout
    board = (sweep / "report" / "leaderboard.md").read_text()
    assert "| 1 | ddpm (lr=0.002) |" in board and "## Failed jobs" in board
    for name in ("leaderboard.csv", "runs.csv", "report.html", "samples_grid.png"):
        assert (sweep / "report" / name).exists(), name


def test_rerunning_a_sweep_skips_finished_jobs_and_retries_failed_ones(failing_sweep):
    sweep, _ = failing_sweep
    before = results(sweep)
    proc = multirun(sweep, "solver.lr=0.002,1e12", NO_PLOTS, failed=1)
    after = results(sweep)
    assert after.keys() == before.keys()
    for name, result in before.items():
        if result["status"] == "ok":  # untouched: same file, same finish time
            assert after[name] == result
        else:  # a failed job is run again
            assert after[name]["status"] == "failed"
            assert after[name]["finished"] != result["finished"]
    assert "job 0: skipped ddpm-moons-s0 (result exists)" in proc.stdout


@pytest.mark.slow  # two worker processes importing torch: ~30 s on a loaded machine
def test_joblib_runs_jobs_in_parallel_workers(tmp_path):
    proc = multirun(tmp_path, "launcher=joblib", "hydra.launcher.n_jobs=2",
                    "solver.name=ddpm,nope", NO_PLOTS, failed=1)
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout
    jobs = by_status(results(tmp_path))
    assert len(jobs["ok"]) == 1 and len(jobs["failed"]) == 1
    assert "nope" in jobs["failed"][0]["error"] and "registered solvers" in jobs["failed"][0][
        "error"]


def test_slurm_code_path_through_submitit_local(tmp_path):
    proc = multirun(tmp_path, "launcher=submitit_local", "solver.name=ddpm,nope", NO_PLOTS,
                    failed=1)
    assert "Submitit 'local' sweep output dir" in proc.stdout
    assert list((tmp_path / ".submitit").glob("*/*_log.out")), "submitit ran no job"
    jobs = by_status(results(tmp_path))
    assert len(jobs["ok"]) == 1 and len(jobs["failed"]) == 1
    assert "sweep done: 2 jobs: 1 ok, 1 failed" in proc.stdout  # callback in the submitter


def hydra_launcher(preset: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"launcher={preset}"],
                      return_hydra_config=True)
    return cfg.hydra.launcher


def test_launcher_presets_compose():
    assert hydra_launcher("local")._target_.endswith("SeedGroupLauncher")
    joblib = hydra_launcher("joblib")
    assert joblib._target_.endswith("JoblibLauncher") and joblib.n_jobs == -1
    slurm = hydra_launcher("slurm")
    assert slurm._target_.endswith("SlurmLauncher")
    for key in ("partition", "gpus_per_node", "timeout_min", "array_parallelism",
                "cpus_per_task", "mem_gb", "account", "setup", "additional_parameters"):
        assert key in slurm, key
    assert slurm.submitit_folder.endswith("/.submitit/%j")  # inside the sweep folder
    local = hydra_launcher("submitit_local")
    assert local._target_.endswith("LocalLauncher") and local.gpus_per_node == 0


def test_ray_preset_needs_its_plugin():
    module, extra = LAUNCHER_PLUGINS["ray"]
    try:
        launcher = hydra_launcher("ray")
    except Exception as err:  # the plugin is an optional extra
        assert "hydra/launcher/ray" in str(err)
        assert missing_launcher_hint(["-m", "launcher=ray"]) == (
            "genbench: launcher=ray needs the Hydra launcher plugin hydra-ray-launcher, "
            "which is not installed: pip install 'genbench[ray]'")
    else:
        assert launcher.ray.init.address == "auto" and "num_gpus" in launcher.ray.remote


def test_missing_launcher_hint(monkeypatch):
    assert missing_launcher_hint(["launcher=local", "seed=0,1"]) is None
    assert missing_launcher_hint(["launcher=joblib"]) is None  # installed in the test extra
    monkeypatch.setattr("genbench.sweep.callback._installed", lambda module: False)
    assert "pip install 'genbench[slurm]'" in missing_launcher_hint(["launcher=slurm"])
    assert "pip install 'genbench[joblib]'" in missing_launcher_hint(["launcher=joblib"])
    assert "pip install 'genbench[ray]'" in missing_launcher_hint(["hydra/launcher=ray_aws"])


@pytest.mark.skipif("missing_launcher_hint" not in inspect.getsource(genbench.sweep.cli),
                    reason="genbench.sweep.cli.main does not call missing_launcher_hint yet")
def test_cli_prints_the_install_hint(tmp_path):
    if missing_launcher_hint(["launcher=ray"]) is None:
        pytest.skip("the Ray launcher plugin is installed")
    proc = run_genbench("-m", "launcher=ray", f"hydra.sweep.dir={tmp_path}", timeout=120)
    assert proc.returncode != 0 and "pip install 'genbench[ray]'" in proc.stderr


def test_sweep_id_and_job_line():
    assert sweep_id("multirun/2026-01-31/12-00-00") == "2026-01-31_12-00-00"
    ok = {"status": "ok", "solver": "ddpm", "dataset": "moons", "seed": 1,
          "metrics": {"data_w2_ratio": 1.234, "data_w2": 0.1, "data_w2_floor": 0.081, "nfe": 20,
                      "train_seconds": 3.21}}
    assert job_line(ok, 3) == ("job 3: ok ddpm-moons-s1: W2/floor 1.23 (W2 0.1, floor 0.081) | "
                               "NFE 20 | train 3.2 s")
    assert job_line(ok | {"skipped": True}) == "skipped ddpm-moons-s1 (result exists)"
    failed = {"status": "failed", "solver": "x", "dataset": "moons", "seed": 0,
              "error_type": "ConfigError", "error": "bad"}
    assert job_line(failed, 0) == "job 0: FAILED x-moons-s0: ConfigError: bad"


def test_callback_groups_a_sweeps_jobs(monkeypatch):
    from hydra.core.utils import JobReturn, JobStatus

    from genbench.run.tracking import SWEEP_ID_ENV
    from genbench.sweep.callback import SweepCallback

    monkeypatch.delenv(SWEEP_ID_ENV, raising=False)
    callback = SweepCallback()
    job = OmegaConf.create({"hydra": {"mode": "MULTIRUN", "sweep": {"dir": "/x/day/time"},
                                      "job": {"num": 0}}})
    callback.on_job_start(job, task_function=print)
    assert os.environ[SWEEP_ID_ENV] == "day_time"
    callback.on_job_end(job, JobReturn(status=JobStatus.COMPLETED, _return_value={}))
    assert SWEEP_ID_ENV not in os.environ  # the next sweep in this process gets its own
    single = OmegaConf.create({"hydra": {"mode": "RUN", "sweep": {"dir": "/x/day/time"}}})
    callback.on_job_start(single, task_function=print)
    assert SWEEP_ID_ENV not in os.environ  # a single run is in no sweep group


def test_seeds_of_a_local_sweep_train_together_with_batch_seeds(tmp_path):
    sweep = tmp_path / "sweep"
    proc = multirun(sweep, "solver=ddpm", "seed=0,1", "batch_seeds=true", "launcher=local",
                    NO_PLOTS)
    found = results(sweep)
    assert sorted(r["seed"] for r in found.values()) == [0, 1]
    for name, result in found.items():
        assert result["status"] == "ok", result.get("traceback")
        assert f"seed={result['seed']}," in name  # each seed in its own job's folder
        assert result["train"]["batched_seeds"] == 2  # one training for both seeds
        assert (sweep / name / ".hydra" / "overrides.yaml").exists()
    assert proc.stdout.count("ddpm on") == 2  # a result line per job
    # without batch_seeds the same sweep trains each seed alone
    alone = tmp_path / "alone"
    multirun(alone, "solver=ddpm", "seed=0,1", "launcher=local", NO_PLOTS)
    assert all("batched_seeds" not in r["train"] for r in results(alone).values())
