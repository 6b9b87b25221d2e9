"""examples/own_solver.py runs end to end at tiny sizes: a new solver on a .npy file, beside
ddpm and cfm at the same budget, in one leaderboard."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "own_solver.py"


def test_own_solver_example_runs_on_own_data_at_equal_budget(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("own_solver_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look the module up
    spec.loader.exec_module(module)
    from genbench.core.solver import SOLVERS

    monkeypatch.setattr(SOLVERS, "_entries", SOLVERS.snapshot())  # unregister afterwards
    data = tmp_path / "mine.npy"
    rng = np.random.default_rng(1)
    np.save(data, rng.normal(size=(400, 2)) * [2.0, 0.3] + [4.0, -1.0])
    report = module.main(["--data", str(data), "--out", str(tmp_path / "out"),
                          "--train-steps", "20", "--nfe", "6", "--n-test", "50",
                          "--hidden", "16"])
    results = {p.parent.name: json.loads(p.read_text())
               for p in (tmp_path / "out").glob("*/results.json")}
    assert set(results) == {"trig-s0", "ddpm-s0", "cfm-s0"}
    for name, result in results.items():
        assert result["status"] == "ok", (name, result.get("error"))
        assert result["metrics"]["nfe"] == 6 and result["metrics"]["train_steps"] == 20, name
        assert result["config"]["dataset"]["path"] == str(data)
    text = report.read_text()
    assert "trig" in text and "unequal budgets" not in text
