"""Tracking: logger=none tracks nothing; logger=wandb writes a real offline run per job.

The wandb checks run wandb itself, offline, into the test's temporary folder: the run
folder, its record file and the logged image must exist, and the records must hold the run's
name, group, job type, training curve and metrics. A run is finished even when its job fails.
The records are also parsed (protobuf) to check the variant in the name, the tags, the
scalar summaries with their declared minimum, and the job's files as Artifacts.
"""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from genbench.core.config import LoggerConfig, RunConfig
from genbench.run.pipeline import run
from genbench.run.tracking import (
    SWEEP_ID_ENV,
    NullTracker,
    WandbTracker,
    log_sweep,
    make_tracker,
    run_name,
)
from genbench.sweep.schemas import register_schemas
from tests.conftest import CONFIG_DIR

register_schemas()
TINY = ["experiment=smoke", "dataset.n_train=500", "dataset.n_test=200", "solver.steps=50",
        "solver.sample_steps=20", "progress=false"]


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-default"))
    # Artifacts are staged under the data and cache folders: keep them in the test's folder.
    for key in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(key, str(tmp_path / "wandb-home" / key.lower()))
    monkeypatch.setenv(SWEEP_ID_ENV, "sweep-under-test")
    return tmp_path


def compose_job(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=TINY + overrides)


def run_folder(job_dir: Path) -> Path:
    (folder,) = (job_dir / "wandb").glob("offline-run-*")
    return folder


def records(folder: Path, *expected: bytes, wait: float = 30.0) -> bytes:
    """The run's record file once it holds every ``expected`` string.

    wandb's service process writes the file: the last records can land a moment after
    ``run.finish()`` returns, longer on a loaded machine.
    """
    (path,) = folder.glob("run-*.wandb")
    deadline = time.monotonic() + wait
    while True:
        data = path.read_bytes()
        missing = [e for e in expected if e not in data]
        if not missing or time.monotonic() > deadline:
            assert not missing, f"{missing} not in {path}"
            return data
        time.sleep(0.1)


def test_run_name():
    rc = RunConfig(solver={"name": "ddpm"}, dataset={"name": "moons"}, seed=3)
    assert run_name(rc) == "ddpm-moons-s3"
    # The variant: the job's other overrides (the selections in the name are dropped).
    assert run_name(rc, "seed=3,solver.sample_steps=20,solver=ddpm") == (
        "ddpm-moons-s3 (solver.sample_steps=20)")
    assert run_name(rc, "dataset=moons,seed=3") == "ddpm-moons-s3"


def test_logger_none_tracks_nothing(tmp_path):
    assert isinstance(make_tracker(LoggerConfig(), config={}, name="x", output_dir=tmp_path),
                      NullTracker)
    result = run(compose_job(["logger=none", "eval.plot=false"]), tmp_path)
    assert result["status"] == "ok"
    assert not (tmp_path / "wandb").exists()


def test_unknown_logger_and_mode_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown logger 'tensorboard'; available: none, wandb"):
        make_tracker(LoggerConfig(name="tensorboard"), config={}, name="x", output_dir=tmp_path)
    result = run(compose_job(["logger=wandb", "logger.mode=sometimes"]), tmp_path)
    assert result["status"] == "failed" and "offline, online, disabled" in result["error"]


def test_offline_wandb_run_of_a_job(offline):
    job = offline / "job"
    result = run(compose_job(["logger=wandb"]), job)
    assert result["status"] == "ok", result.get("traceback")
    folder = run_folder(job)  # logger.dir=null: the run lives in the job's folder
    # name, group (the sweep), job type, training curve, metrics, resolved config, status
    records(folder, b"ddpm-moons-s0", b"sweep-under-test", b"train-eval", b"train/loss",
            b"train/step", b"data_w2_ratio", b"latent_w2", b"nfe", b"n_train", b"sample_steps",
            b"ok")
    assert list(folder.glob("files/media/images/samples_*.png")), "sample scatter not logged"
    assert not (offline / "wandb-default").exists()


def test_wandb_run_is_finished_when_the_job_fails(offline):
    import wandb

    job = offline / "job"
    result = run(compose_job(["logger=wandb", "solver.lr=1e12", "eval.plot=false"]), job)
    assert result["status"] == "failed" and result["error_type"] == "DivergenceError"
    assert wandb.run is None, "the failed job's run was left open"
    records(run_folder(job), b"DivergenceError", b"failed")


def test_a_tracking_error_never_costs_the_result(caplog):
    class BrokenRun:
        def log(self, *args, **kwargs):
            raise ConnectionError("wandb is down")

    tracker = WandbTracker.__new__(WandbTracker)
    tracker.run = BrokenRun()
    tracker.log_train(10, {"loss": 1.0})
    assert "log_train failed: ConnectionError: wandb is down" in caplog.text


def test_sweep_tables_in_their_own_run(offline):
    image = Path(__file__).resolve().parents[1] / "docs" / "report.png"
    rows = [{"solver": "ddpm", "dataset": "moons", "data_w2_ratio": 1.5}]
    assert log_sweep(LoggerConfig(), group="g", directory=offline, tables={"t": rows}) is None
    folder = log_sweep({"name": "wandb", "mode": "offline"}, group="sweep-x",
                       directory=offline / "report", tables={"leaderboard": rows, "empty": []},
                       images={"grid": image, "samples": [("a", image), ("b", image)]})
    assert folder is not None and folder.parent == offline / "report" / "wandb"
    (table,) = folder.glob("files/media/table/leaderboard_*.table.json")
    assert json.loads(table.read_text())["data"] == [["ddpm", "moons", 1.5]]
    for key in ("grid", "samples"):
        assert list(folder.glob(f"files/media/images/{key}_*.png")), key
    records(folder, b"report-sweep-x", b"sweep-x", b"report")
    assert os.environ[SWEEP_ID_ENV] == "sweep-under-test"  # untouched


def wandb_records(folder: Path, wait: float = 30.0) -> list:
    """The protobuf records of an offline run's ``.wandb`` file, once its exit record is in.

    The file is a LevelDB-style log (wandb's datastore): a 7-byte header, then 32 KiB blocks
    of chunks, each with a 7-byte header (crc32, length, type: full/first/middle/last).
    """
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = folder.glob("run-*.wandb")
    deadline = time.monotonic() + wait
    while True:
        data, records, pos, pending = path.read_bytes(), [], 7, b""
        while pos + 7 <= len(data):
            left = 32768 - pos % 32768
            if left < 7:
                pos += left
                continue
            length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
            if length == 0 and kind == 0:
                pos += left
                continue
            chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
            pending = chunk if kind in (1, 2) else pending + chunk
            if kind in (1, 4):
                record = pb.Record()
                record.ParseFromString(pending)
                records.append(record)
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        assert time.monotonic() < deadline, f"no exit record in {path}"
        time.sleep(0.2)


def _summary(records: list) -> dict:
    """The run's final summary: the summary updates replayed in order."""
    summary: dict = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            for item in r.summary.update:
                key = item.key or ".".join(item.nested_key)
                summary[key] = json.loads(item.value_json)
    return summary


def test_wandb_names_tags_scalar_summaries_and_artifacts(offline):
    job = offline / "job"
    result = run(compose_job(["logger=wandb", "eval.plot=false"]), job,
                 variant="solver=ddpm,solver.sample_steps=20")
    assert result["status"] == "ok", result.get("traceback")
    records = wandb_records(run_folder(job))
    (head,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert head.display_name == "ddpm-moons-s0 (solver.sample_steps=20)"
    assert {"ddpm", "moons"} <= set(head.tags)
    metrics = {r.metric.name: r.metric for r in records
               if r.WhichOneof("record_type") == "metric"}
    for key in ("data_w2", "data_w2_ratio", "latent_tv", "train_seconds"):
        assert metrics[key].summary.min, f"{key}: summary='min' not declared"
    assert "nfe" not in metrics  # not a distance: no minimum
    summary = _summary(records)
    for key in ("data_w2", "data_w2_ratio", "latent_tv", "nfe"):
        assert summary[key] == pytest.approx(result["metrics"][key]), key  # a scalar
    artifacts = {r.artifact.type: r.artifact.name for r in records
                 if r.WhichOneof("record_type") == "artifact"}
    assert set(artifacts) == {"samples", "results", "model"}
    assert all(name.startswith(f"run-{head.run_id}-") for name in artifacts.values())


def test_minimised_metrics_declare_their_goal_where_wandb_takes_it():
    """wandb >= 0.2x dropped define_metric's goal: pass it only where the API has it."""
    from genbench.run.tracking import _define_minimised

    class Old:
        calls: list = []

        def define_metric(self, name, step_metric=None, summary=None, goal=None):
            self.calls.append((name, summary, goal))

    class New:
        calls: list = []

        def define_metric(self, name, step_metric=None, summary=None):
            self.calls.append((name, summary))

    _define_minimised(Old(), "data_w2")
    _define_minimised(New(), "data_w2")
    assert Old.calls == [("data_w2", "min", "minimize")]
    assert New.calls == [("data_w2", "min")]
