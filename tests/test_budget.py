"""Equal budgets: ``budget.train_steps`` and ``budget.nfe`` mapped by each solver onto its own
keys, checked against the cost the solver actually spends (its ``nfe`` after sampling, its
training steps), recorded in results and flagged by the leaderboard."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from genbench.core.budget import BudgetConfig, BudgetError
from genbench.core.config import ConfigError, validate
from genbench.core.solver import Solver, get_solver_class
from genbench.report.leaderboard import Leaderboard

TINY = {"hidden": 16, "depth": 2, "batch_size": 32, "log_every": 5, "warmup": 1}


def _data(n: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    # non-zero mean, anisotropic
    return torch.randn(n, 2, generator=g) * torch.tensor([2.0, 0.5]) + torch.tensor([3.0, -1.0])


def _budgeted(name: str, budget: BudgetConfig, **extra) -> Solver:
    cls = get_solver_class(name)
    config = validate(cls.Config, TINY | extra, what=name)
    overrides = cls.apply_budget(config, budget)
    return cls(2, dataclasses.asdict(config) | overrides)


@pytest.mark.parametrize("name, extra, nfe", [
    ("ddpm", {}, 12),
    ("pfode", {}, 12),  # the SDE sampler: sde_steps = nfe
    ("pfode", {"sampler": "ode"}, 12),  # dopri5 configured: budget.ode_method (euler) takes over
    ("cfm", {"method": "rk4"}, 12),  # a fixed-step method is kept: 3 steps x 4 calls
    ("cfm", {"method": "midpoint"}, 13),  # 6 steps x 2 calls: at most the budget
    ("lsb", {}, 12),
    ("lsb", {"sde_method": "milstein"}, 12),
    ("jko", {"max_blocks": 2, "tol": 0.0}, 12),
])
def test_nfe_budget_is_what_the_sampler_spends(name, extra, nfe, monkeypatch):
    # jko drops a block whose objective is worse than the identity's; 4 training steps learn
    # little, so keep every block here: this test counts the sampler's calls, not the rule.
    monkeypatch.setattr("solvers.jko.REJECT_MARGIN", float("inf"))
    torch.manual_seed(0)
    solver = _budgeted(name, BudgetConfig(train_steps=4, nfe=nfe), **extra)
    solver.fit(_data())
    solver.sample(16, generator=torch.Generator().manual_seed(0))
    expected = nfe - nfe % 2 if extra.get("method") == "midpoint" else nfe
    assert solver.nfe == expected, (name, extra, solver.nfe)


@pytest.mark.parametrize("name, extra, per_run", [
    ("ddpm", {}, {"steps": 12}),
    ("lsb", {}, {"steps": 12}),
    ("jko", {"max_blocks": 3, "tol": 0.0}, {"steps": 4}),  # steps are per block
    ("cfm", {"rectified": 2, "reflow_pairs": 32}, {"steps": 4, "reflow_steps": 4}),
])
def test_train_steps_budget_is_the_whole_training_run(name, extra, per_run):
    solver = _budgeted(name, BudgetConfig(train_steps=12), **extra)
    for key, value in per_run.items():
        assert getattr(solver.config, key) == value
    stats = solver.fit(_data())
    if name != "cfm":  # cfm's stats count the first training only
        assert stats["steps"] == 12


def test_reference_rows_spend_nothing_and_unmapped_budgets_fail_the_job_only():
    assert get_solver_class("memoriser").apply_budget(None, BudgetConfig(12, 12)) == {}
    with pytest.raises(BudgetError, match="exceeds its timesteps=1000"):
        _budgeted("ddpm", BudgetConfig(nfe=5000))
    with pytest.raises(BudgetError, match="sde_method='srk'"):
        _budgeted("lsb", BudgetConfig(nfe=10), sde_method="srk")
    with pytest.raises(BudgetError, match="raise budget.nfe to >= 8"):
        _budgeted("jko", BudgetConfig(nfe=7), max_blocks=2, sample_method="rk4")
    with pytest.raises(BudgetError, match="fewer than its 8 training stages"):
        _budgeted("jko", BudgetConfig(train_steps=5))
    # a plugin solver that maps only the training budget (the base class's default)
    with pytest.raises(BudgetError, match="declares no mapping of budget.nfe"):
        Solver.apply_budget(Solver.Config(), BudgetConfig(nfe=10))
    assert Solver.apply_budget(Solver.Config(), BudgetConfig(train_steps=7)) == {"steps": 7}
    with pytest.raises(ConfigError, match="budget.nfe must be >= 1"):
        validate(BudgetConfig, {"nfe": 0}, what="budget")


def test_a_job_records_its_budget(tmp_path):
    from genbench.run.pipeline import run

    cfg = {"dataset": {"name": "moons", "n_train": 200, "n_test": 50},
           "solver": {"name": "cfm", "steps": 500, **TINY}, "budget": {"train_steps": 6,
                                                                       "nfe": 8},
           "eval": {"plot": False, "tv_monte_carlo": False, "density_max_n": 20},
           "progress": False, "device": "cpu", "cache_dir": str(tmp_path / "cache")}
    result = run(cfg, tmp_path / "job")
    assert result["status"] == "ok", result.get("error")
    assert result["budget"] == {"train_steps": 6, "nfe": 8,
                                "overrides": {"steps": 6, "method": "euler", "sample_steps": 8}}
    assert result["metrics"]["train_steps"] == 6 and result["metrics"]["nfe"] == 8
    saved = json.loads((tmp_path / "job" / "results.json").read_text())
    assert saved["budget"]["overrides"]["sample_steps"] == 8


def _fake_job(root, folder, solver, nfe, train_steps, w2):
    path = root / folder
    path.mkdir(parents=True)
    (path / "results.json").write_text(json.dumps({
        "status": "ok", "solver": solver, "dataset": "moons", "seed": 0,
        "config": {"solver": {"name": solver}, "dataset": {"name": "moons"}, "seed": 0},
        "metrics": {"data_w2_ratio": w2, "nfe": nfe, "train_steps": train_steps}}))


def test_leaderboard_shows_budgets_and_flags_unequal_ones(tmp_path):
    from genbench.report.render import markdown

    _fake_job(tmp_path / "equal", "a", "ddpm", 20, 100, 1.5)
    _fake_job(tmp_path / "equal", "b", "cfm", 20, 100, 1.2)
    _fake_job(tmp_path / "equal", "c", "memoriser", 1, 0, 1.1)  # a reference row: no flag
    board = Leaderboard.load(tmp_path / "equal")
    assert board.unequal_budgets("moons") == []
    text = markdown(board, {}, tmp_path)
    assert "train steps" in text and "unequal budgets" not in text

    _fake_job(tmp_path / "unequal", "a", "ddpm", 1000, 100, 1.5)
    _fake_job(tmp_path / "unequal", "b", "cfm", 20, 100, 1.2)
    board = Leaderboard.load(tmp_path / "unequal")
    assert board.unequal_budgets("moons") == ["nfe"]
    text = markdown(board, {}, tmp_path)
    assert "moons (unequal budgets: nfe)" in text


def test_rescoring_at_a_budget_nfe_equals_a_fresh_job_at_that_budget(tmp_path):
    from genbench.run.pipeline import run
    from genbench.run.rescore import rescore

    def cfg(nfe):
        return {"dataset": {"name": "moons", "n_train": 200, "n_test": 50},
                "solver": {"name": "cfm", **TINY}, "budget": {"train_steps": 6, "nfe": nfe},
                "eval": {"plot": False, "tv_monte_carlo": False, "density_max_n": 20},
                "progress": False, "device": "cpu", "cache_dir": str(tmp_path / "cache")}

    assert run(cfg(8), tmp_path / "job")["status"] == "ok"
    rescored = rescore(tmp_path / "job", ["budget.nfe=3"])
    assert rescored["status"] == "ok", rescored.get("error")
    assert rescored["metrics"]["nfe"] == 3 and rescored["metrics"]["train_steps"] == 6
    assert rescored["config"]["budget"]["nfe"] == 3
    assert rescored["config"]["solver"]["sample_steps"] == 3
    fresh = run(cfg(3), tmp_path / "fresh")
    assert rescored["metrics"]["data_w2"] == fresh["metrics"]["data_w2"]
    with pytest.raises(ConfigError, match="budget.train_steps changes the trained model"):
        rescore(tmp_path / "job", ["budget.train_steps=9"])


@pytest.mark.slow  # five tiny jobs through the CLI: ~30 s
def test_a_multi_solver_sweep_at_one_budget_is_reported_equal(tmp_path):
    import os
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "genbench", "-m", "solver=ddpm,cfm,lsb,pfode,memoriser",
         "budget.train_steps=12", "budget.nfe=6", "dataset.n_train=300", "dataset.n_test=60",
         "progress=false", "eval.plot=false", "eval.tv_monte_carlo=false",
         "hydra.callbacks.sweep.plots=false", f"hydra.sweep.dir={tmp_path}"],
        capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"},
        timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = {r["solver"]: r for r in (json.loads(p.read_text())
                                        for p in tmp_path.glob("*/results.json"))}
    assert set(results) == {"ddpm", "cfm", "lsb", "pfode", "memoriser"}
    for name, result in results.items():
        assert result["status"] == "ok", (name, result.get("error"))
        if name != "memoriser":
            assert result["metrics"]["nfe"] == 6 and result["metrics"]["train_steps"] == 12
    assert Leaderboard.load(tmp_path).unequal_budgets("moons") == []
    assert "unequal budgets" not in (tmp_path / "report" / "leaderboard.md").read_text()
