"""Checkpoints and re-scoring: a job writes model.pt; genbench-eval re-samples it untrained.

The central check: a job trained once and re-scored at three NFEs trains once, and each
re-scored result equals, number for number, a fresh job run with that sampler setting and
the same seed. Every solver's declared sampling keys are checked to be sampling-only: a
solver trained with other values of them has the very same weights.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from hydra import compose, initialize_config_dir

from genbench.core.config import ConfigError
from genbench.core.solver import Solver, get_solver_class, list_solvers
from genbench.run.checkpoint import load_solver, read_checkpoint, save_checkpoint
from genbench.run.files import MODEL_FILE, RESULTS_FILE
from genbench.run.pipeline import run
from genbench.run.rescore import rescore, variant_name
from genbench.sweep.eval_cli import main as eval_main
from genbench.sweep.schemas import register_schemas
from tests.conftest import CONFIG_DIR
from tests.test_contract import tiny_config

register_schemas()
JOB = ["experiment=smoke", "dataset.n_train=500", "dataset.n_test=200", "solver.steps=60",
       "solver.sample_steps=40", "progress=false", "eval.plot=false"]
# Another valid value for each sampling key of the built-in solvers.
ALTERNATIVES = {"sample_steps": 7, "sampler": "ddim", "eta": 0.5, "clip_x0": False,
                "method": "midpoint", "rtol": 1e-4, "atol": 1e-4, "trace": "hutchinson",
                "exact_trace_max_dim": 1, "trace_seed": 3, "t_eps": 2e-3, "sde_steps": 7,
                "sde_method": "milstein"}
# Where a key's alternative differs by solver (pfode's samplers are sde | ode).
SOLVER_ALTERNATIVES = {"pfode": {"sampler": "ode"}}
METRICS = ("data_w2", "data_w2_floor", "latent_w2", "data_tv", "data_tv_floor", "data_mmd",
           "latent_mmd", "nfe", "nll")


def compose_job(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=JOB + overrides)


@pytest.fixture
def count_fits(monkeypatch):
    """Counts calls of DDPM.fit (the only solver these jobs train)."""
    cls = get_solver_class("ddpm")
    calls = []
    original = cls.fit

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "fit", counted)
    return calls


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    result = run(compose_job([]), out)
    assert result["status"] == "ok", result.get("traceback")
    return out, result


def test_a_job_writes_its_checkpoint(trained):
    out, result = trained
    payload = read_checkpoint(out / MODEL_FILE)
    assert payload["name"] == "ddpm" and payload["dim"] == 2
    assert payload["config"]["steps"] == 60 and payload["config"]["sample_steps"] == 40
    assert payload["autoencoder_key"] == result["autoencoder_info"]["key"]
    assert payload["job"]["dataset"]["name"] == "moons" and payload["job"]["seed"] == 0
    assert not list(out.glob(".*.tmp"))
    # Solver.load reads it too, and the weights sample as the job sampled.
    assert isinstance(Solver.load(out / MODEL_FILE), get_solver_class("ddpm"))


def test_rescoring_at_three_nfes_trains_once_and_equals_fresh_jobs(trained, tmp_path,
                                                                    count_fits):
    out, result = trained
    variants = [["solver.sample_steps=10"], ["solver.sample_steps=20"],
                ["solver.sample_steps=20", "solver.sampler=ddim"]]
    rescored = [rescore(out, v) for v in variants]
    assert count_fits == [], "re-scoring must not train"
    for v, r in zip(variants, rescored, strict=True):
        assert r["status"] == "ok", r.get("traceback")
        assert (out / "eval" / variant_name(v) / RESULTS_FILE).is_file()
        m = r["metrics"]
        assert m["train_reused"] is True
        assert m["train_seconds"] == result["metrics"]["train_seconds"]
    assert [r["metrics"]["nfe"] for r in rescored] == [10, 20, 20]
    # A fresh job with the same sampler setting: the same numbers.
    for v, r in zip(variants[1:], rescored[1:], strict=True):
        fresh = run(compose_job(v), tmp_path / "-".join(v))
        assert fresh["status"] == "ok"
        for key in METRICS:
            assert r["metrics"][key] == fresh["metrics"][key], key
    assert len(count_fits) == 2
    assert rescored[1]["metrics"]["data_w2"] != rescored[2]["metrics"]["data_w2"]


def test_rescored_results_are_report_rows(trained):
    from genbench.report.leaderboard import Leaderboard

    out, _ = trained
    rescore(out, ["solver.sample_steps=5"])
    board = Leaderboard.load(out)
    steps = {j.params.get("solver.sample_steps") for j in board.jobs}
    assert {40, 5} <= steps
    assert any("sample_steps=5" in j.variant for j in board.jobs)


@pytest.mark.parametrize(("override", "message"), [
    ("solver.steps=10", "solver.steps changes training"),
    ("solver.lr=0.1", "only its sampling keys can change: solver.sample_steps"),
    ("solver.nope=1", "solver.nope is not a key of this solver"),
    ("dataset.n_test=50", "dataset.n_test changes the trained model or its data"),
    ("seed=3", "seed changes the trained model"),
    ("autoencoder.name=pca", "autoencoder.name changes the trained model"),
    ("+eval.extra=1", "must read key=value"),
])
def test_training_keys_are_refused_before_any_work(trained, override, message, count_fits):
    out, _ = trained
    with pytest.raises(ConfigError, match=message):
        rescore(out, [override])
    assert count_fits == []


def test_genbench_eval_command(trained, capsys):
    out, _ = trained
    eval_main([str(out), "solver.sample_steps=8"])
    text = capsys.readouterr().out
    assert "NFE 8" in text and "solver.sample_steps=8" in text
    saved = json.loads((out / "eval" / "solver.sample_steps=8" / RESULTS_FILE).read_text())
    assert saved["rescored_from"]["overrides"] == ["solver.sample_steps=8"]
    with pytest.raises(SystemExit) as exit_info:
        eval_main([str(out), "solver.steps=5"])
    assert exit_info.value.code == 2
    assert "changes training" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        eval_main([str(out / "missing")])
    assert "no readable results.json" in capsys.readouterr().err


def test_genbench_eval_sweeps_nfe_without_training(trained, capsys, count_fits):
    out, result = trained
    eval_main([str(out), "solver.sample_steps=6,9", "eval.plot=false"])
    assert count_fits == []
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("ok")]
    assert len(lines) == 2 and "NFE 6" in lines[0] and "NFE 9" in lines[1]
    for steps in (6, 9):
        saved = json.loads((out / "eval" / f"eval.plot=false,solver.sample_steps={steps}"
                            / RESULTS_FILE).read_text())
        assert saved["metrics"]["nfe"] == steps
        assert saved["metrics"]["train_seconds"] == result["metrics"]["train_seconds"]
    with pytest.raises(SystemExit) as info:
        eval_main([str(out), "solver.sample_steps"])
    assert info.value.code == 2 and "genbench-eval: error" in capsys.readouterr().err


def _solvers_with_sampling_keys() -> list[str]:
    return [n for n in list_solvers() if get_solver_class(n).sampling_keys]


@pytest.mark.parametrize("name", _solvers_with_sampling_keys())
def test_sampling_keys_do_not_change_training(name, tmp_path):
    """Trained with other sampling values, a solver has the same weights; rebuilt from the
    first one's checkpoint with those values, it samples exactly as the second."""
    cls = get_solver_class(name)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    assert set(cls.sampling_keys) <= fields, "sampling_keys must be config keys"
    base = tiny_config(cls)
    alternatives = ALTERNATIVES | SOLVER_ALTERNATIVES.get(name, {})
    changed = {k: alternatives[k] for k in cls.sampling_keys if k in alternatives}
    data = torch.randn(256, 2) * torch.tensor([1.0, 0.4]) + torch.tensor([0.7, -0.2])
    solvers = []
    for config in (base, base | changed):
        torch.manual_seed(0)
        solver = cls(2, config)
        solver.fit(data)
        solvers.append(solver)
    first, second = solvers
    for key, value in first.state_dict().items():
        torch.testing.assert_close(value, second.state_dict()[key], msg=key)
    save_checkpoint(first, tmp_path / MODEL_FILE, solver_name=name, autoencoder_key=None,
                    job={})
    rebuilt = load_solver(read_checkpoint(tmp_path / MODEL_FILE), changed)
    gen = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    torch.testing.assert_close(rebuilt.sample(64, generator=gen()),
                               second.sample(64, generator=gen()))


def test_jko_declares_no_sampling_keys():
    """Its fit pushes data through the sampling ODE: nothing can change without retraining."""
    cls = get_solver_class("jko")
    assert cls.sampling_keys == ()
    with pytest.raises(ConfigError, match=r"none \(its sampler is part of fit\)"):
        load_solver({"name": "jko", "dim": 2, "config": {}, "state_dict": {}},
                    {"sample_steps": 4})


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        read_checkpoint(tmp_path / MODEL_FILE)
    torch.save({"weights": 1}, tmp_path / MODEL_FILE)
    with pytest.raises(ValueError, match="not a genbench checkpoint"):
        read_checkpoint(tmp_path / MODEL_FILE)
