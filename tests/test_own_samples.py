"""genbench-eval --samples: samples made elsewhere are scored exactly as a job scores its own.

A job's samples, saved as .npy/.npz/.pt and scored through --samples, give the job's own
W2, floor, TV and MMD (the same splits, encoder-decoder and harness); the result is a report
row under the given name. Bad files fail before any scoring, naming what was wrong.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from genbench.core.config import ConfigError
from genbench.core.solver import DataError
from genbench.run.external import read_samples
from genbench.run.files import RESULTS_FILE, SAMPLES_FILE
from genbench.run.pipeline import run
from genbench.sweep.eval_cli import compose_run_config
from genbench.sweep.eval_cli import main as eval_main
from genbench.sweep.schemas import register_schemas
from tests.conftest import CONFIG_DIR

register_schemas()
DATA = ["dataset=8gaussians", "dataset.n_train=500", "dataset.n_test=300"]
SAME = ("data_w2", "data_w2_floor", "data_w2_ratio", "data_tv", "data_tv_floor", "data_mmd",
        "data_mmd_floor", "recon_w2")


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    out = tmp_path_factory.mktemp("job")
    overrides = ["experiment=smoke", *DATA, "solver=cfm", "solver.steps=60",
                 "solver.method=euler", "solver.sample_steps=10", "progress=false",
                 "eval.plot=false"]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    result = run(cfg, out)
    assert result["status"] == "ok", result.get("traceback")
    return out, result


def _save(kind: str, x: np.ndarray, folder):
    path = folder / f"mine.{kind}"
    if kind == "npy":
        np.save(path, x)
    elif kind == "npz":
        np.savez(path, x_gen=x, other=x[:3])
    else:
        torch.save({"x_gen": torch.from_numpy(x)}, path)
    return path


@pytest.mark.parametrize("kind", ["npy", "npz", "pt"])
def test_a_jobs_samples_score_as_the_job(job, tmp_path, kind):
    out, result = job
    x = np.load(out / SAMPLES_FILE)["x_gen"]
    path = _save(kind, x, tmp_path)
    eval_main(["--samples", str(path), *DATA, "--out", str(tmp_path / "scored"),
               "--name", "external"])
    scored = json.loads((tmp_path / "scored" / RESULTS_FILE).read_text())
    assert scored["status"] == "ok" and scored["solver"] == "external"
    for key in SAME:
        assert scored["metrics"][key] == pytest.approx(result["metrics"][key], rel=1e-9), key
    assert scored["metrics"]["nfe"] is None and scored["metrics"]["nll"] is None
    assert scored["samples"]["n"] == len(x)


def test_the_jobs_own_samples_file_and_the_report(job, tmp_path):
    from genbench.report.leaderboard import Leaderboard

    out, result = job
    eval_main(["--samples", str(out / SAMPLES_FILE), *DATA, "--out", str(tmp_path / "a")])
    scored = json.loads((tmp_path / "a" / RESULTS_FILE).read_text())
    assert scored["solver"] == "samples"  # the file's stem
    assert scored["metrics"]["data_w2"] == pytest.approx(result["metrics"]["data_w2"])
    board = Leaderboard.load(tmp_path)
    assert [j.solver for j in board.jobs] == ["samples"] and board.jobs[0].ok
    assert any(row.get("solver") == "samples" for row in board.rows())


def test_a_different_target_scores_worse(job, tmp_path):
    out, result = job
    eval_main(["--samples", str(out / SAMPLES_FILE), "dataset=moons", "dataset.n_train=500",
               "dataset.n_test=300", "--out", str(tmp_path / "m")])
    scored = json.loads((tmp_path / "m" / RESULTS_FILE).read_text())
    assert scored["metrics"]["data_w2_ratio"] > 2 * result["metrics"]["data_w2_ratio"]


@pytest.mark.parametrize(("array", "message"), [
    (np.zeros(5), "shape \\(n, d\\)"),
    (np.zeros((0, 2)), "n >= 1"),
    (np.array([[0.0, np.nan], [1.0, 1.0]]), "1 row\\(s\\) with NaN"),
])
def test_bad_sample_files_are_named(tmp_path, array, message):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(DataError, match=message):
        read_samples(path)


def test_file_errors(tmp_path):
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 2)), b=np.zeros((3, 2)))
    with pytest.raises(DataError, match="several arrays \\(a, b\\)"):
        read_samples(tmp_path / "two.npz")
    assert read_samples(tmp_path / "two.npz", key="b").shape == (3, 2)
    with pytest.raises(DataError, match="no array 'c'"):
        read_samples(tmp_path / "two.npz", key="c")
    with pytest.raises(DataError, match="must end in one of"):
        read_samples(tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError):
        read_samples(tmp_path / "missing.npy")


def test_wrong_dimension_and_solver_keys_are_refused(tmp_path, capsys):
    np.save(tmp_path / "x3.npy", np.zeros((10, 3)))
    with pytest.raises(SystemExit) as info:
        eval_main(["--samples", str(tmp_path / "x3.npy"), *DATA, "--out", str(tmp_path / "o")])
    assert info.value.code == 2
    assert "have 3 columns but data set '8gaussians' is 2-dimensional" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit):
        eval_main(["--samples", str(tmp_path / "x3.npy"), "solver.steps=3"])
    assert "the samples are the solver" in capsys.readouterr().err


def test_compose_api_config():
    rc = compose_run_config(["dataset=moons", "eval.confidence=0.9"])
    assert rc.dataset["name"] == "moons" and rc.eval.confidence == 0.9
    with pytest.raises(Exception, match="nope"):
        compose_run_config(["dataset=nope"])
    with pytest.raises(ConfigError):
        compose_run_config(["eval.confidence=2"])
