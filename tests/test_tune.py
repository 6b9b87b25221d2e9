"""Equal tuning: Hydra's Optuna sweeper over a validation split held out of the training
rows; the task returns the scalar objective and the chosen settings are recorded."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from genbench.core.errors import ConfigError
from genbench.data import DataSplits, build_dataset
from genbench.data.validation import validation_splits
from genbench.sweep.tune import objective

ENV = os.environ | {"OMP_NUM_THREADS": "1"}
DATASET = {"name": "8gaussians", "n_train": 400, "n_test": 60}


def _cfg(tmp_path, split: str) -> dict:
    return {"dataset": DATASET, "solver": {"name": "cfm", "steps": 20, "hidden": 16,
                                           "method": "euler", "sample_steps": 5},
            "eval": {"split": split, "plot": False, "tv_monte_carlo": False},
            "progress": False, "device": "cpu", "cache_dir": str(tmp_path / "cache")}


@pytest.fixture
def poisoned_test_split(monkeypatch):
    """The data set's test and reference points replaced by NaN: any read of them shows."""
    import genbench.run.scoring as scoring

    def build(config, seed):
        splits = build_dataset(config, seed)
        nan = torch.full_like(splits.test, math.nan)
        return DataSplits(splits.name, splits.train, nan, nan.clone(), splits.log_prob,
                          splits.sampler)

    monkeypatch.setattr(scoring, "build_dataset", build)


def test_the_validation_objective_never_reads_the_test_points(tmp_path, poisoned_test_split):
    from genbench.run.pipeline import run

    result = run(_cfg(tmp_path, "validation"), tmp_path / "val")
    assert result["status"] == "ok", result.get("error")
    assert math.isfinite(objective(result)), "scored without a single test point"
    train = build_dataset(DATASET, seed=0).train
    import numpy as np

    scored = torch.as_tensor(np.load(tmp_path / "val" / "samples.npz")["x_test"])
    assert len(scored) == 60 and all((train == row).all(1).any() for row in scored), (
        "the validation points are training rows")
    # the poison is visible: scoring the test split reads it
    poisoned = run(_cfg(tmp_path, "test"), tmp_path / "test")
    assert poisoned["status"] == "failed" or not math.isfinite(objective(poisoned))


def test_validation_split_is_carved_from_training_rows_only():
    splits = build_dataset(DATASET, seed=0)
    val = validation_splits(splits)
    assert len(val.test) == len(val.reference) == 60 and len(val.train) == 400 - 120
    rows = torch.cat([val.test, val.reference, val.train])
    assert torch.equal(rows, splits.train)
    assert not any((splits.test == row).all(1).any() for row in val.test)
    small = DataSplits("x", splits.train[:7], splits.test, splits.reference)
    with pytest.raises(ConfigError, match="at least 8 training rows"):
        validation_splits(small)


def test_objective_is_a_float_and_inf_for_a_failed_job():
    assert objective({"status": "ok", "metrics": {"data_w2_ratio": 1.25}}) == 1.25
    assert objective({"status": "failed", "error": "x"}) == math.inf  # NaN stops Optuna
    assert objective({"status": "ok", "metrics": {"data_w2_ratio": None}}) == math.inf


def test_three_trial_optuna_sweep_records_the_chosen_settings(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    proc = subprocess.run(
        [sys.executable, "-m", "genbench", "-m", "experiment=tune", "hydra.sweeper.n_trials=3",
         "solver=cfm", "dataset.n_train=300", "dataset.n_test=60", "solver.steps=10",
         "solver.method=euler", "solver.sample_steps=5", "progress=false",
         "eval.tv_monte_carlo=false", f"hydra.sweep.dir={tmp_path}"],
        capture_output=True, text=True, env=ENV, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in tmp_path.glob("*/results.json")]
    assert len(results) == 3
    assert all(r["config"]["eval"]["split"] == "validation" for r in results)
    summary = json.loads((tmp_path / "tune.json").read_text())
    (study,) = summary["studies"]
    assert study["solver"] == "cfm" and study["n_trials"] == 3
    assert summary["searched"] == ["solver.hidden", "solver.lr"]
    values = [objective(r) for r in results]
    assert study["best_value"] == pytest.approx(min(values))
    best = results[values.index(min(values))]["config"]["solver"]
    assert study["best_params"] == {"solver.hidden": best["hidden"], "solver.lr": best["lr"]}
    assert "best data_w2_ratio" in proc.stdout and (tmp_path / "tune.md").exists()


@pytest.mark.slow  # two studies of two trials: ~40 s
def test_genbench_tune_gives_each_solver_the_same_trials(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    proc = subprocess.run(
        [sys.executable, "-m", "genbench.sweep.tune", "solver=ddpm,cfm",
         "hydra.sweeper.n_trials=2", "dataset.n_train=300", "dataset.n_test=60",
         "solver.steps=10", "budget.nfe=5", "progress=false", "eval.tv_monte_carlo=false",
         f"hydra.sweep.dir={tmp_path}"],
        capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "tune.json").read_text())
    assert {s["solver"]: s["n_trials"] for s in summary["studies"]} == {"ddpm": 2, "cfm": 2}
    assert all(s["best_params"] for s in summary["studies"])
    assert "| cfm | moons | 2 |" in proc.stdout
