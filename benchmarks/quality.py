"""Quality bar of every solver (W2/floor on the 2-D benchmarks) and W2 against NFE.

A thin driver around the preset ``configs/experiment/quality.yaml`` (72 jobs: 5 solvers and
the 3 rungs of the sanity ladder x moons, 8gaussians, checkerboard x seeds 0, 1, 2, default
configs). The ladder (``collapse``, ``gaussian``, ``memoriser``: no training, seconds per
job) are reference rows: shown, never the best, never held to the bar. It

1. runs the preset through the normal pipeline:
   ``genbench -m experiment=quality launcher=joblib hydra.launcher.n_jobs=2`` (the sweep
   callback writes the leaderboard into ``<sweep>/report/``); with ``--batch-seeds`` it instead
   trains each (solver, data set)'s seeds together (:func:`genbench.run.seeds.run_seeds`)
   into the folders the sweep would have used, then writes the same report;
2. re-scores each seed-0 job's checkpoint at the NFE grid, per sampler, without retraining
   (:func:`genbench.run.rescore.rescore`, what ``genbench-eval RUN_DIR
   solver.sample_steps=10,20,50,100`` does); the solver's default sampler is not re-run: its
   point is the job's own result (DDPM's 1,000 ancestral steps are sampled once);
3. tabulates the ``results.json`` files into ``benchmarks/results/quality.{json,md}``.

    python benchmarks/quality.py                              # the 72 jobs + the NFE sweep
    python benchmarks/quality.py --datasets moons --no-nfe    # a subset (24 jobs)
    python benchmarks/quality.py --collect --sweep-dir DIR    # tabulate a finished sweep

Bar (issue 3): every solver mean ratio <= 2.5 on each data set; the best <= 1.6.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SOLVERS = ["ddpm", "lsb", "pfode", "jko", "cfm"]
LADDER = ["collapse", "gaussian", "memoriser"]  # reference rows (solvers/ladder.py)
DATASETS = ["moons", "8gaussians", "checkerboard"]
SEEDS = [0, 1, 2]
PRESET = "experiment=quality"
CACHE_DIR = "/tmp/gb-quality-cache"
BAR_ALL, BAR_BEST = 2.5, 1.6
# Per solver, the samplers swept (label, sampling overrides) and the key that sets the step
# count. The first sampler is the solver's default kind: its default point is the job itself.
NFE_SAMPLERS: dict[str, tuple[str, list[tuple[str, dict[str, Any]]]]] = {
    "ddpm": ("sample_steps", [("ancestral", {}), ("ddim", {"sampler": "ddim", "eta": 0.0})]),
    # pfode samples with the reverse SDE by default (its row is the job); the grid sweeps its
    # PF-ODE, the sampler that shares the likelihood's process.
    "pfode": ("sample_steps", [("ode-euler", {"sampler": "ode", "method": "euler"}),
                               ("ode-rk4", {"sampler": "ode", "method": "rk4"})]),
    "cfm": ("sample_steps", [("euler", {"method": "euler"}), ("midpoint", {"method": "midpoint"})]),
    "lsb": ("sde_steps", [("euler", {})]),
}
NFE_GRID = [10, 20, 50, 100]
JOB_KEYS = ("data_w2", "data_w2_floor", "data_w2_ratio", "latent_w2_ratio", "nfe",
            "train_seconds", "sample_seconds")


def job_folder(solver: str, dataset: str, seed: int, extra: Sequence[str] = ()) -> str:
    """The folder Hydra names a preset job (``hydra.job.override_dirname``: its sorted
    overrides, less the result-neutral keys)."""
    from genbench.core.config import is_result_neutral

    kept = [o for o in extra if not is_result_neutral(o.partition("=")[0])]
    return ",".join(sorted([f"solver={solver}", f"dataset={dataset}", f"seed={seed}", PRESET,
                            *kept]))


def _read(path: Path) -> dict[str, Any] | None:
    from genbench.core.storage import read_json

    return read_json(path)


# ---- 1. the 72 jobs ---------------------------------------------------------------------

def sweep_command(sweep_dir: Path, solvers: list[str], datasets: list[str], seeds: list[int],
                  jobs: int, extra: Sequence[str] = ()) -> list[str]:
    """The ``genbench`` multirun of the preset, narrowed to the given lists."""
    return ["genbench", "-m", PRESET, "launcher=joblib", f"hydra.launcher.n_jobs={jobs}",
            f"hydra.sweep.dir={sweep_dir}", f"cache_dir={CACHE_DIR}", "progress=false",
            f"solver={','.join(solvers)}", f"dataset={','.join(datasets)}",
            f"seed={','.join(map(str, seeds))}", *extra]


def _seed_group(solver: str, dataset: str, seeds: list[int], sweep_dir: Path,
                extra: Sequence[str]) -> None:
    import torch

    from genbench.run.seeds import run_seeds
    from genbench.sweep.eval_cli import compose_run_config

    torch.set_num_threads(1)
    rc = compose_run_config([PRESET, f"solver={solver}", f"dataset={dataset}",
                             f"cache_dir={CACHE_DIR}", "progress=false", *extra,
                             "batch_seeds=true"])
    run_seeds(rc, seeds, [sweep_dir / job_folder(solver, dataset, s, extra) for s in seeds])


def run_batched(sweep_dir: Path, solvers: list[str], datasets: list[str], seeds: list[int],
                jobs: int, extra: Sequence[str] = ()) -> None:
    """The preset's jobs, each (solver, data set)'s seeds trained together, then the report."""
    from joblib import Parallel, delayed

    from genbench.report.write import write_report

    groups = [(s, d) for s in solvers for d in datasets]
    Parallel(n_jobs=jobs)(delayed(_seed_group)(s, d, seeds, sweep_dir, extra) for s, d in groups)
    write_report(sweep_dir)


# ---- 2. W2 against NFE, one training per solver -----------------------------------------

def nfe_tasks(sweep_dir: Path) -> list[tuple[Path, list[str]]]:
    """(seed-0 job folder, sampling overrides) for every NFE point not yet scored; a point
    with the job's own sampler settings is the job itself and is never re-sampled."""
    from genbench.run.rescore import EVAL_DIR, variant_name

    tasks = []
    for folder in sorted(p.parent for p in sweep_dir.glob("*/results.json")):
        result = _read(folder / "results.json") or {}
        if result.get("status") != "ok" or result.get("seed") != 0:
            continue
        if result.get("solver") not in NFE_SAMPLERS:
            continue
        key, samplers = NFE_SAMPLERS[result["solver"]]
        own = (result.get("config") or {}).get("solver") or {}
        for _, extra in samplers:
            for steps in NFE_GRID:
                values = {**extra, key: steps}
                if all(own.get(k) == v for k, v in values.items()):
                    continue  # the job's own sampler: its result is this point
                overrides = [f"solver.{k}={v}" for k, v in values.items()]
                done = _read(folder / EVAL_DIR / variant_name(overrides) / "results.json")
                if not done or done.get("status") != "ok":
                    tasks.append((folder, overrides))
    return tasks


def _rescore(folder: Path, overrides: list[str]) -> None:
    import torch

    from genbench.run.rescore import rescore

    torch.set_num_threads(1)
    rescore(folder, overrides)


def run_nfe(sweep_dir: Path, jobs: int) -> int:
    """Re-score the missing NFE points, then rewrite the sweep's report (it lists each point
    as a variant of its job, as ``genbench-report`` would)."""
    from joblib import Parallel, delayed

    from genbench.report.write import write_report

    tasks = nfe_tasks(sweep_dir)
    Parallel(n_jobs=jobs)(delayed(_rescore)(f, o) for f, o in tasks)
    write_report(sweep_dir)
    return len(tasks)


# ---- 3. tables --------------------------------------------------------------------------

def _sampler_label(solver: str, config: dict[str, Any]) -> str:
    cfg = config.get("solver", {})
    if solver == "ddpm":
        return str(cfg.get("sampler"))
    if solver == "lsb":
        return str(cfg.get("sde_method"))
    if solver == "pfode" and cfg.get("sampler", "ode") != "ode":
        return f"{cfg.get('sampler')} ({cfg.get('sde_steps')} steps)"
    return str(cfg.get("method"))


def _verdicts(sweep_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """``(data set, solver) -> {group, best}`` from the sweep's leaderboard (the calibrated
    rank groups of genbench.report): the table marks a best only where the report does."""
    import csv

    path = sweep_dir / "report" / "leaderboard.csv"
    if not path.exists():
        return {}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    with path.open() as fh:
        for r in csv.DictReader(fh):
            # A solver's re-scored samplers are variants of one seed each: its row is the
            # variant with the most seeds (the jobs' own sampler).
            key, seeds = (r["dataset"], r["solver"]), int(r.get("n_ok") or 0)
            if key not in out or seeds > out[key]["n_ok"]:
                out[key] = {"group": r.get("group") or "", "best": r.get("best") == "True",
                            "n_ok": seeds}
    return {k: {"group": v["group"], "best": v["best"]} for k, v in out.items()}


def collect(sweep_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The jobs (one row per seed) and the NFE points (seed 0) found under ``sweep_dir``."""
    rows, nfe = [], []
    verdicts = _verdicts(sweep_dir)
    for path in sorted(sweep_dir.glob("*/results.json")):
        r = _read(path)
        if r is None:
            continue
        base = {"solver": r.get("solver"), "dataset": r.get("dataset"), "seed": r.get("seed")}
        if r.get("status") != "ok":
            rows.append(base | {"status": "failed", "error": r.get("error")})
            continue
        m = r["metrics"]
        rows.append(base | {"status": "ok", **{k: m.get(k) for k in JOB_KEYS},
                            **verdicts.get((r.get("dataset"), r.get("solver")), {})})
        if r.get("seed") == 0 and r.get("solver") in NFE_SAMPLERS:
            variants = [(r, "default")] + [
                (v, "rescored") for v in map(_read, sorted(path.parent.glob("eval/*/results.json")))
                if v and v.get("status") == "ok"]
            key = NFE_SAMPLERS[r["solver"]][0]
            for v, origin in variants:
                vm = v["metrics"]
                nfe.append({"solver": r["solver"], "dataset": r["dataset"], "origin": origin,
                            "sampler": _sampler_label(r["solver"], v["config"]),
                            "steps": v["config"]["solver"].get(key), "nfe": vm.get("nfe"),
                            "data_w2": vm["data_w2"], "data_w2_ratio": vm["data_w2_ratio"],
                            "sample_seconds": vm.get("sample_seconds")})
    nfe.sort(key=lambda r: (r["solver"], DATASETS.index(r["dataset"])
                            if r["dataset"] in DATASETS else 99, r["sampler"], r["nfe"] or 0))
    return rows, nfe


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean (and std over seeds) per (solver, data set) of the finished jobs."""
    table = []
    for solver in sorted({r["solver"] for r in rows}):
        for dataset in DATASETS:
            ok = [r for r in rows if r["solver"] == solver and r["dataset"] == dataset
                  and r["status"] == "ok"]
            if not ok:
                continue
            ratios = [r["data_w2_ratio"] for r in ok]
            table.append({
                "solver": solver, "dataset": dataset, "seeds": len(ok),
                "w2": statistics.mean(r["data_w2"] for r in ok),
                "floor": statistics.mean(r["data_w2_floor"] for r in ok),
                "ratio": statistics.mean(ratios),
                "ratio_std": statistics.stdev(ratios) if len(ratios) > 1 else 0.0,
                "nfe": statistics.mean(r["nfe"] for r in ok),
                "train_s": statistics.mean(r["train_seconds"] for r in ok),
                "sample_s": statistics.mean(r["sample_seconds"] for r in ok),
                "group": ok[-1].get("group", ""), "best": bool(ok[-1].get("best", False)),
            })
    return table


def markdown(table: list[dict[str, Any]], nfe: list[dict[str, Any]], meta: dict) -> str:
    lines = [
        "# Quality benchmark", "",
        f"The preset `{PRESET}` through the pipeline ({meta['machine']}): identity encoder, "
        "2,000 generated vs 2,000 held-out points, default configs. "
        "Ratio = W2 / floor (W2 between two independent target samples of the same size). "
        f"Bar: every solver <= {BAR_ALL}, the best per data set <= {BAR_BEST}; the sanity "
        f"ladder ({', '.join(LADDER)}) are reference rows, outside the bar. "
        "`train s` and `sample s` are wall seconds of each job, so they grow with the "
        "machine's load; the runs below give CPU seconds.", "",
        "Runs (a later run replaces the rows it re-ran):", "",
        *[f"- {h['date']}: `{h['command']}`: " + ", ".join(
            f"{k} {v}" for k, v in h.items() if k not in ("date", "command") and v != "")
          for h in meta.get("history", [])],
        "",
        "Group and **best** come from the sweep's leaderboard (the rank groups of the "
        "calibrated verdict, docs/verdicts.md): solvers in one group are not distinguishable "
        "at its level, and a best is marked only when it is significantly better than the "
        "next; the order within a data set is by mean ratio.", "",
        "| data set | solver | group | seeds | W2 | floor | ratio (mean ± std) | NFE | "
        "train s | sample s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset in DATASETS:
        rows = sorted((r for r in table if r["dataset"] == dataset), key=lambda r: r["ratio"])
        for r in rows:
            if r["solver"] in LADDER:  # a reference row: not ranked, not held to the bar
                mark, flag = " (reference)", ""
            else:
                mark = " **best**" if r.get("best") else ""
                flag = "" if r["ratio"] <= BAR_ALL else " ✗"
            lines.append(
                f"| {dataset} | {r['solver']}{mark} | {r.get('group') or '—'} | {r['seeds']} | "
                f"{r['w2']:.3f} | "
                f"{r['floor']:.3f} | {r['ratio']:.2f} ± {r['ratio_std']:.2f}{flag} | "
                f"{r['nfe']:.0f} | {r['train_s']:.1f} | {r['sample_s']:.2f} |")
    if nfe:
        lines += ["", "## W2 against NFE (seed 0: one training per solver and data set, "
                  "re-sampled from its checkpoint)", "",
                  "`default` is the job's own result (its default sampler, not re-run); "
                  "`rescored` rows come from `genbench-eval`/`rescore` (one draw each, the "
                  "job's sampler seed).", "",
                  "| solver | data set | sampler | steps | NFE | W2 | ratio | sample s | "
                  "origin |", "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['solver']} | {r['dataset']} | {r['sampler']} | {r['steps']} | "
                  f"{r['nfe']} | {r['data_w2']:.3f} | {r['data_w2_ratio']:.2f} | "
                  f"{r['sample_seconds']:.2f} | {r['origin']} |" for r in nfe]
    return "\n".join(lines) + "\n"


def write_tables(rows: list[dict[str, Any]], nfe: list[dict[str, Any]],
                 this: dict[str, Any] | None, results: Path = RESULTS) -> str:
    """Merge ``rows``/``nfe`` into ``results/quality.json`` and rewrite ``quality.md``."""
    from genbench.core.storage import atomic_json_dump, atomic_write

    path = results / "quality.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    fresh = {(r["solver"], r["dataset"], r["seed"]) for r in rows}
    rows = [r for r in previous.get("runs", [])
            if (r["solver"], r["dataset"], r["seed"]) not in fresh] + rows
    swept = {(r["solver"], r["dataset"]) for r in nfe}
    nfe = [r for r in previous.get("nfe_sweep", []) if (r["solver"], r["dataset"]) not in swept
           and "origin" in r] + nfe  # rows of the old 3-draw sweep are dropped
    history = previous.get("meta", {}).get("history", []) + ([this] if this else [])
    meta = {"machine": f"{os.cpu_count()}-core CPU", "history": history}
    table = summarise(rows)
    text = markdown(table, nfe, meta)
    results.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "summary": table, "runs": rows, "nfe_sweep": nfe}
    atomic_json_dump(payload, path)
    atomic_write(results / "quality.md", lambda fh: fh.write(text.encode()))
    return text


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--solvers", nargs="*", default=SOLVERS + LADDER)
    parser.add_argument("--datasets", nargs="*", default=DATASETS)
    parser.add_argument("--seeds", nargs="*", type=int, default=SEEDS)
    parser.add_argument("--jobs", type=int, default=2, help="parallel workers (1 thread each)")
    parser.add_argument("--sweep-dir", type=Path,
                        default=ROOT / "benchmarks" / ".runs" / "quality" / "sweep")
    parser.add_argument("--batch-seeds", action="store_true",
                        help="train each (solver, data set)'s seeds together (run_seeds)")
    parser.add_argument("--no-nfe", action="store_true", help="skip the NFE re-scoring")
    parser.add_argument("--collect", action="store_true",
                        help="tabulate what --sweep-dir holds; run nothing")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more overrides for every job (e.g. solver.steps=200: a smoke run)")
    parser.add_argument("--note", default="", help="a remark recorded with this run")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    this: dict[str, Any] | None = None
    if not args.collect:
        load_start, start, cpu0 = os.getloadavg()[0], time.time(), time.process_time()
        cpu_children0 = _children_cpu()
        if args.batch_seeds:
            run_batched(args.sweep_dir, args.solvers, args.datasets, args.seeds, args.jobs,
                        args.set)
        else:
            command = sweep_command(args.sweep_dir, args.solvers, args.datasets, args.seeds,
                                    args.jobs, args.set)
            print(" ".join(command), flush=True)
            subprocess.run(command, check=False)
        sweep_wall, load_mid = time.time() - start, os.getloadavg()[0]
        sweep_cpu = _children_cpu() - cpu_children0 + time.process_time() - cpu0
        n_rescored = 0 if args.no_nfe else run_nfe(args.sweep_dir, args.jobs)
        this = {"command": " ".join(["python benchmarks/quality.py", *sys.argv[1:]]),
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "jobs": len(args.solvers) * len(args.datasets) * len(args.seeds),
                "sweep wall s": round(sweep_wall), "sweep CPU s": round(sweep_cpu),
                "NFE points re-scored": n_rescored,
                "NFE wall s": round(time.time() - start - sweep_wall),
                "load (1 min) at start/after sweep/end":
                    f"{load_start:.1f}/{load_mid:.1f}/{os.getloadavg()[0]:.1f}"}
        if args.note:
            this["note"] = args.note
    rows, nfe = collect(args.sweep_dir)
    print(write_tables(rows, nfe, this))


if __name__ == "__main__":
    main()
