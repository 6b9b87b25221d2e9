"""benchmarks/robustness.py: a job composes with the default solver config unless ``--set``
overrides are given, and a diagnosis run with overrides does not replace the defaults'
table (no training)."""

from __future__ import annotations

import json

from benchmarks import robustness


def test_set_overrides_reach_the_job_config():
    default = robustness.job_config("jko", "circles", 1, "/tmp/cache")
    changed = robustness.job_config("jko", "circles", 1, "/tmp/cache",
                                    ("solver.steps=7", "solver.warm_scale=0.5"))
    assert default.solver.steps != 7 and default.seed == 1
    assert (changed.solver.steps, changed.solver.warm_scale) == (7, 0.5)
    gmm = robustness.job_config("jko", "gmm10", 0, "/tmp/cache", ("solver.steps=7",))
    assert (gmm.dataset.dim, gmm.solver.steps) == (10, 7)


def test_a_diagnosis_table_is_not_saved(tmp_path, monkeypatch):
    job = tmp_path / "runs" / "jko-circles-s0"
    job.mkdir(parents=True)
    metrics = dict.fromkeys(robustness.METRICS, 1.0)
    (job / "results.json").write_text(json.dumps({"status": "ok", "metrics": metrics}))
    monkeypatch.setattr(robustness, "RESULTS", tmp_path / "results")
    text = robustness.write(tmp_path / "runs", [], save=False)
    assert "| jko | circles | 1 | 1.00 |" in text
    assert not (tmp_path / "results").exists()
    robustness.write(tmp_path / "runs", [])
    assert "| jko | circles | 1 | 1.00 |" in (tmp_path / "results" / "robustness.md").read_text()
