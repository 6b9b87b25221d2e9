"""The quality benchmark as a preset: ``experiment=quality`` composes into the 45-job sweep,
its jobs compose into valid run configs, and the driver's tables are right on a fake sweep
folder (no training)."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from benchmarks import quality
from genbench.core.solver import list_solvers
from genbench.sweep.eval_cli import compose_run_config
from genbench.sweep.schemas import register_schemas

register_schemas()
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def _sweep_params() -> dict[str, list[str]]:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=quality"],
                      return_hydra_config=True)
    return {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}


def test_preset_composes_into_the_72_job_sweep_with_the_ladder():
    params = _sweep_params()
    assert params == {"solver": quality.SOLVERS + quality.LADDER, "dataset": quality.DATASETS,
                      "seed": [str(s) for s in quality.SEEDS]}
    assert len(list(itertools.product(*params.values()))) == 72
    assert set(quality.SOLVERS + quality.LADDER) <= set(list_solvers())
    assert quality.LADDER == ["collapse", "gaussian", "memoriser"]


@pytest.mark.parametrize("solver", quality.SOLVERS + quality.LADDER)
def test_each_solver_of_the_preset_composes_at_its_defaults(solver):
    rc = compose_run_config(["experiment=quality", f"solver={solver}", "dataset=checkerboard",
                             "seed=2"])
    assert (rc.solver["name"], rc.dataset["name"], rc.seed) == (solver, "checkerboard", 2)
    assert rc.eval.plot is False and rc.autoencoder["name"] == "identity"


def test_job_folder_is_hydras_override_dirname():
    assert quality.job_folder("ddpm", "moons", 0) == (
        "dataset=moons,experiment=quality,seed=0,solver=ddpm")


def _result(solver: str, dataset: str, seed: int, ratio: float, *, nfe: int = 100,
            solver_cfg: dict | None = None, status: str = "ok") -> dict:
    floor = 0.2
    return {"status": status, "solver": solver, "dataset": dataset, "seed": seed,
            "config": {"solver": {"name": solver, **(solver_cfg or {})}},
            "error": None if status == "ok" else "diverged",
            "metrics": {"data_w2": ratio * floor, "data_w2_floor": floor,
                        "data_w2_ratio": ratio, "latent_w2_ratio": ratio, "nfe": nfe,
                        "train_seconds": 10.0 + seed, "sample_seconds": 0.5}}


def _write(path: Path, data: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps(data))


def test_tables_from_a_fake_sweep_folder(tmp_path):
    sweep = tmp_path / "sweep"
    ddpm_default = {"sampler": "ancestral", "sample_steps": 1000}
    for seed, ratio in enumerate([1.0, 1.4, 1.9]):
        _write(sweep / quality.job_folder("ddpm", "moons", seed),
               _result("ddpm", "moons", seed, ratio, nfe=1000, solver_cfg=ddpm_default))
    _write(sweep / quality.job_folder("jko", "moons", 0), _result("jko", "moons", 0, 3.0))
    _write(sweep / quality.job_folder("jko", "moons", 1),
           _result("jko", "moons", 1, 9.0, status="failed"))
    variant = sweep / quality.job_folder("ddpm", "moons", 0) / "eval" / "x"
    _write(variant, _result("ddpm", "moons", 0, 2.2, nfe=20,
                            solver_cfg={"sampler": "ddim", "sample_steps": 20}))

    rows, nfe = quality.collect(sweep)
    assert len(rows) == 5 and sum(r["status"] == "failed" for r in rows) == 1
    table = {r["solver"]: r for r in quality.summarise(rows)}
    assert table["ddpm"]["seeds"] == 3 and table["ddpm"]["ratio"] == pytest.approx(1.1 + 1 / 3)
    assert table["ddpm"]["ratio_std"] == pytest.approx(0.45092497528)
    assert table["ddpm"]["train_s"] == pytest.approx(11.0)
    assert table["jko"]["seeds"] == 1 and table["jko"]["ratio"] == pytest.approx(3.0)
    # the NFE table: the job's own default point (not re-sampled) and its re-scored variant
    assert [(r["origin"], r["sampler"], r["steps"], r["nfe"], r["data_w2_ratio"])
            for r in nfe] == [("default", "ancestral", 1000, 1000, 1.0),
                              ("rescored", "ddim", 20, 20, 2.2)]

    results = tmp_path / "results"
    text = quality.write_tables(rows, nfe, {"command": "test", "date": "today"}, results)
    # no report in the sweep: no calibrated verdict, so no best is marked and no group shown
    assert "| moons | ddpm | — | 3 |" in text and "3.00 ± 0.00 ✗" in text
    # the sweep's leaderboard decides: a best only where the report marks one
    (sweep / "report").mkdir()
    (sweep / "report" / "leaderboard.csv").write_text(
        "dataset,rank,solver,variant,n_ok,group,best\n"
        "moons,1,ddpm,steps=1000,3,1,True\nmoons,2,jko,,1,2,False\n"
        "moons,3,ddpm,steps=20,1,3,False\n")
    text_marked = quality.write_tables(*quality.collect(sweep), None, tmp_path / "marked")
    assert "| moons | ddpm **best** | 1 | 3 |" in text_marked
    assert "| moons | jko | 2 | 1 |" in text_marked
    (sweep / "report" / "leaderboard.csv").write_text(
        "dataset,rank,solver,variant,n_ok,group,best\n"
        "moons,1,ddpm,,3,1,False\nmoons,2,jko,,1,1,False\n")
    text_tied = quality.write_tables(*quality.collect(sweep), None, tmp_path / "tied")
    assert " **best** |" not in text_tied and "| moons | jko | 1 | 1 |" in text_tied
    # Ladder rows are references: a memoriser below every solver is not the best, and a
    # collapse far above the bar is not flagged.
    ladder = [_result("memoriser", "moons", 0, 0.9), _result("collapse", "moons", 0, 15.0)]
    for r in ladder:
        _write(sweep / quality.job_folder(r["solver"], "moons", 0), r)
    rows_ladder, _ = quality.collect(sweep)
    text = quality.write_tables(rows_ladder, [], None, tmp_path / "ladder")
    assert "| moons | memoriser (reference) | — | 1 |" in text and "memoriser **best**" not in text
    assert "| moons | collapse (reference) | — | 1 |" in text and "15.00 ± 0.00 |" in text
    saved = json.loads((results / "quality.json").read_text())
    assert len(saved["runs"]) == 5 and len(saved["nfe_sweep"]) == 2
    # a second run of one seed replaces that row only
    again = [r | {"data_w2_ratio": 1.2} if r["solver"] == "jko" and r["seed"] == 0 else r
             for r in rows if r["solver"] == "jko" and r["status"] == "ok"]
    quality.write_tables(again, [], None, results)
    saved = json.loads((results / "quality.json").read_text())
    assert len(saved["runs"]) == 5
    assert {r["solver"]: r for r in saved["summary"]}["jko"]["ratio"] == pytest.approx(1.2)


def test_nfe_tasks_skip_the_default_point_and_scored_variants(tmp_path):
    sweep = tmp_path / "sweep"
    _write(sweep / quality.job_folder("ddpm", "moons", 0),
           _result("ddpm", "moons", 0, 1.0, solver_cfg={"sampler": "ancestral"}))
    _write(sweep / quality.job_folder("ddpm", "moons", 1), _result("ddpm", "moons", 1, 1.0))
    _write(sweep / quality.job_folder("jko", "moons", 0), _result("jko", "moons", 0, 1.0))
    lsb_default = {"sde_steps": 100, "sde_method": "euler"}
    _write(sweep / quality.job_folder("lsb", "moons", 0),
           _result("lsb", "moons", 0, 1.0, solver_cfg=lsb_default))
    lsb = [o for f, o in quality.nfe_tasks(sweep) if "solver=lsb" in f.name]
    assert lsb == [["solver.sde_steps=10"], ["solver.sde_steps=20"], ["solver.sde_steps=50"]]
    shutil.rmtree(sweep / quality.job_folder("lsb", "moons", 0))
    tasks = quality.nfe_tasks(sweep)
    # seed 0 of ddpm only: 2 samplers x the grid, never the default 1,000 ancestral steps
    assert len(tasks) == 2 * len(quality.NFE_GRID)
    assert all(o for _, o in tasks) and ["solver.sample_steps=1000"] not in [o for _, o in tasks]
    assert ["solver.sampler=ddim", "solver.eta=0.0", "solver.sample_steps=10"] in [
        o for _, o in tasks]
    from genbench.run.rescore import EVAL_DIR, variant_name

    folder, overrides = tasks[0]
    _write(folder / EVAL_DIR / variant_name(overrides), _result("ddpm", "moons", 0, 1.0))
    assert len(quality.nfe_tasks(sweep)) == len(tasks) - 1


def test_job_folder_keeps_result_changing_overrides_only():
    # eval.plot and progress are result-neutral: Hydra's exclude_keys leave them out too
    assert quality.job_folder("cfm", "moons", 1, ["solver.steps=20", "eval.plot=false",
                                                  "progress=false"]) == (
        "dataset=moons,experiment=quality,seed=1,solver.steps=20,solver=cfm")  # as Hydra sorts


SMOKE = ["dataset.n_train=300", "dataset.n_test=100", "solver.steps=20",
         "solver.sample_steps=5"]


def test_batched_seeds_write_the_sweeps_folders_and_report(tmp_path, monkeypatch):
    """--batch-seeds: one run_seeds call per (solver, data set), one folder per seed named as
    the sweep names it, a report over them, and the NFE re-scoring finds the seed-0 job."""
    monkeypatch.setattr(quality, "CACHE_DIR", str(tmp_path / "cache"))
    sweep = tmp_path / "sweep"
    quality.run_batched(sweep, ["ddpm"], ["moons"], [0, 1], jobs=1, extra=SMOKE)
    for seed in (0, 1):
        result = json.loads((sweep / quality.job_folder("ddpm", "moons", seed, SMOKE)
                             / "results.json").read_text())
        assert result["status"] == "ok" and result["seed"] == seed
        assert result["train"]["batched_seeds"]
    assert (sweep / "report" / "leaderboard.md").is_file()
    rows, _ = quality.collect(sweep)
    assert sorted(r["seed"] for r in rows) == [0, 1]
    assert [f.name for f, _ in quality.nfe_tasks(sweep)] == [
        quality.job_folder("ddpm", "moons", 0, SMOKE)] * 2 * len(quality.NFE_GRID)
