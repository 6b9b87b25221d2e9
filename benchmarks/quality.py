"""Quality bar of every solver: W2/floor on the 2-D benchmarks, and W2 against NFE.

Each job goes through :func:`genbench.run.pipeline.run` with the solver's default config (the
same path a user's sweep takes): identity encoder, 2,000 generated vs 2,000 held-out points.
Then, for solvers whose sampler has a step count, one fitted model per data set is sampled at
several NFE. Results go to ``benchmarks/results/quality.{json,md}``.

    python benchmarks/quality.py                      # everything (~30-45 min on 2 cores)
    python benchmarks/quality.py --solvers cfm --datasets moons --seeds 0
    python benchmarks/quality.py --batch-seeds        # each solver's seeds trained together

Bar (issue 3): every solver mean ratio <= 2.5 on each data set; the best <= 1.6.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from joblib import Parallel, delayed

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATASETS = ["moons", "8gaussians", "checkerboard"]
BAR_ALL, BAR_BEST = 2.5, 1.6
# The config key that sets each sampler's number of steps, and the samplers swept (label,
# extra keys); every sampler of a solver is scored on the same fitted model.
NFE_KEYS: dict[str, tuple[str, list[tuple[str, dict[str, Any]]]]] = {
    "ddpm": ("sample_steps", [("ancestral", {"sampler": "ancestral"}),
                              ("ddim", {"sampler": "ddim", "eta": 0.0})]),
    "pfode": ("sample_steps", [("euler", {"method": "euler"}), ("rk4", {"method": "rk4"})]),
    "cfm": ("sample_steps", [("euler", {"method": "euler"}), ("midpoint", {"method": "midpoint"})]),
    "lsb": ("sde_steps", [("euler", {"sde_method": "euler"})]),
}
NFE_GRID = [10, 20, 50, 100, 1000]
SWEEP_DRAWS = 3


def _job_config(solver: str, dataset: str, seed: int) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir

    from genbench.sweep.schemas import register_schemas

    register_schemas()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            f"solver={solver}", f"dataset={dataset}", f"seed={seed}", "progress=false",
            "device=cpu"])
    return cfg


def run_job(solver: str, dataset: str, seed: int, out: Path,
            collect: bool = False) -> dict[str, Any]:
    import torch

    from genbench.core.storage import read_json
    from genbench.run.pipeline import RESULTS_FILE, run

    torch.set_num_threads(1)
    folder = out / f"{solver}-{dataset}-s{seed}"
    if collect:  # read finished jobs only, run nothing
        result = read_json(folder / RESULTS_FILE) or {"status": "missing", "error": "not run"}
    else:
        result = run(_job_config(solver, dataset, seed), folder)
    if result["status"] != "ok":
        return {"solver": solver, "dataset": dataset, "seed": seed, "status": "failed",
                "error": result.get("error")}
    m = result["metrics"]
    return {"solver": solver, "dataset": dataset, "seed": seed, "status": "ok",
            **{k: m[k] for k in ("data_w2", "data_w2_floor", "data_w2_ratio", "latent_w2_ratio",
                                 "nfe", "train_seconds", "sample_seconds")}}


def run_seed_group(solver: str, dataset: str, seeds: list[int], out: Path) -> list[dict[str, Any]]:
    """The seeds of one (solver, data set) trained together (``batch_seeds``), one result
    folder per seed as :func:`run_job` writes them."""
    import torch

    from genbench.run.seeds import run_seeds

    torch.set_num_threads(1)
    cfg = _job_config(solver, dataset, seeds[0])
    cfg.batch_seeds = True
    run_seeds(cfg, seeds, [out / f"{solver}-{dataset}-s{seed}" for seed in seeds])
    return [run_job(solver, dataset, seed, out, collect=True) for seed in seeds]


def nfe_sweep(solver: str, dataset: str, seed: int = 0) -> list[dict[str, Any]]:
    """Fit once, then sample at each NFE of ``NFE_GRID`` and score."""
    import torch

    from genbench.codecs import get_autoencoder
    from genbench.core.config import EvalConfig
    from genbench.core.solver import get_solver_class
    from genbench.data import build_dataset
    from genbench.eval.floors import w2_with_floor
    from genbench.run.pipeline import _as_run_config

    torch.set_num_threads(1)
    rc = _as_run_config(_job_config(solver, dataset, seed))
    values = dict(rc.solver)
    cls = get_solver_class(values.pop("name"))
    torch.manual_seed(seed)
    splits = build_dataset(rc.dataset, seed=seed)
    ae, _ = get_autoencoder(rc.autoencoder, rc.dataset, rc.cache_dir)
    model = cls(ae.latent_dim, values)
    model.fit(ae.encode(splits.train))
    key, samplers = NFE_KEYS[solver]
    rows = []
    for (sampler, extra), steps in ((s, n) for s in samplers for n in NFE_GRID):
        for k, v in {key: steps, **extra}.items():
            setattr(model.config, k, v)
        draws = []
        for draw in range(SWEEP_DRAWS):  # sampler seeds: one draw's W2 varies by ~10%
            start = time.perf_counter()
            z = model.sample(len(splits.test),
                             generator=torch.Generator().manual_seed(1000 * seed + draw))
            seconds = time.perf_counter() - start
            m = w2_with_floor(ae.decode(z), splits.test, splits.reference, EvalConfig(),
                              "data", rc.cache_dir)
            draws.append((m["data_w2"], m["data_w2_ratio"], seconds))
        rows.append({"solver": solver, "dataset": dataset, "sampler": sampler, "steps": steps,
                     "nfe": model.nfe,
                     "data_w2": statistics.mean(d[0] for d in draws),
                     "data_w2_ratio": statistics.mean(d[1] for d in draws),
                     "data_w2_ratio_std": statistics.stdev(d[1] for d in draws),
                     "sample_seconds": statistics.mean(d[2] for d in draws)})
    return rows


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
            })
    return table


def markdown(table: list[dict[str, Any]], sweep: list[dict[str, Any]], meta: dict) -> str:
    lines = [
        "# Quality benchmark", "",
        f"{meta['machine']}; identity encoder, 2,000 generated vs 2,000 held-out points, "
        f"default configs, seeds {meta['seeds']}. "
        f"Ratio = W2 / floor (W2 between two independent target samples of the same size). "
        f"Bar: every solver <= {BAR_ALL}, the best per data set <= {BAR_BEST}.", "",
        "The table merges these runs (a later run replaces the rows it re-ran):", "",
        *[f"- {h['date']}: `{h['command']}` ({h['wall_seconds'] / 60:.0f} min)"
          + (f" — {h['note']}" if h.get("note") else "") for h in meta.get("history", [])],
        "",
        "| data set | solver | seeds | W2 | floor | ratio (mean ± std) | NFE | train s "
        "| sample s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset in DATASETS:
        rows = sorted((r for r in table if r["dataset"] == dataset), key=lambda r: r["ratio"])
        for i, r in enumerate(rows):
            mark = " **best**" if i == 0 else ""
            flag = "" if r["ratio"] <= BAR_ALL else " ✗"
            lines.append(
                f"| {dataset} | {r['solver']}{mark} | {r['seeds']} | {r['w2']:.3f} | "
                f"{r['floor']:.3f} | "
                f"{r['ratio']:.2f} ± {r['ratio_std']:.2f}{flag} | {r['nfe']:.0f} | "
                f"{r['train_s']:.1f} | {r['sample_s']:.2f} |")
    if sweep:
        lines += ["", f"## W2 against NFE (seed 0, one fitted model per solver, mean of "
                  f"{SWEEP_DRAWS} sampler seeds)", "",
                  "| solver | data set | sampler | steps | NFE | W2 | ratio (mean ± std) | "
                  "sample s |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['solver']} | {r['dataset']} | {r.get('sampler', '')} | {r['steps']} | "
                  f"{r['nfe']} | "
                  f"{r['data_w2']:.3f} | {r['data_w2_ratio']:.2f} ± "
                  f"{r.get('data_w2_ratio_std', 0.0):.2f} | {r['sample_seconds']:.2f} |"
                  for r in sweep]
    return "\n".join(lines) + "\n"


def main() -> None:
    from genbench.core.solver import list_solvers

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--solvers", nargs="*", default=None)
    parser.add_argument("--datasets", nargs="*", default=DATASETS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-sweep", action="store_true", help="skip the NFE sweep")
    parser.add_argument("--sweep-only", action="store_true",
                        help="run only the NFE sweep (keep the stored benchmark jobs)")
    parser.add_argument("--batch-seeds", action="store_true",
                        help="train each (solver, data set)'s seeds together (batch_seeds)")
    parser.add_argument("--note", default="", help="a remark printed with the table")
    parser.add_argument("--collect", action="store_true",
                        help="tabulate the jobs already finished under --out; run nothing")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / ".runs")
    args = parser.parse_args()
    solvers = args.solvers or list_solvers()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    start = time.time()
    jobs = [] if args.sweep_only else [
        (s, d, seed) for s in solvers for d in args.datasets for seed in args.seeds]
    if args.batch_seeds and not args.collect:  # one task per (solver, data set)
        groups = sorted({(s, d) for s, d, _ in jobs})
        rows = [r for rs in Parallel(n_jobs=args.jobs)(
            delayed(run_seed_group)(s, d, args.seeds, args.out) for s, d in groups) for r in rs]
    else:
        rows = Parallel(n_jobs=1 if args.collect else args.jobs)(
            delayed(run_job)(s, d, seed, args.out, args.collect) for s, d, seed in jobs)
    rows = [r for r in rows if r["status"] != "missing"]
    sweep_jobs = [] if args.no_sweep or args.collect else [
        (s, "moons") for s in solvers if s in NFE_KEYS]
    sweeps = Parallel(n_jobs=args.jobs)(delayed(nfe_sweep)(s, d) for s, d in sweep_jobs)
    sweep = [r for rs in sweeps for r in rs]
    # Merge with earlier results so one solver can be re-run without losing the others.
    previous = json.loads((RESULTS / "quality.json").read_text()) if (
        RESULTS / "quality.json").exists() else {"runs": [], "nfe_sweep": [], "meta": {}}
    fresh = {(r["solver"], r["dataset"], r["seed"]) for r in rows}
    rows = [r for r in previous["runs"] if (r["solver"], r["dataset"], r["seed"]) not in fresh
            ] + rows
    swept = {(r["solver"], r["dataset"]) for r in sweep}
    sweep = [r for r in previous["nfe_sweep"] if (r["solver"], r["dataset"]) not in swept
             ] + sweep
    table = summarise(rows)
    command = " ".join(["python benchmarks/quality.py", *sys.argv[1:]])
    this = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M"), "note": args.note,
            "wall_seconds": time.time() - start}
    history = [] if args.collect else [this]
    meta = {"machine": f"{os.cpu_count()}-core CPU", "seeds": args.seeds,
            "history": previous.get("meta", {}).get("history", []) + history}
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "summary": table, "runs": rows, "nfe_sweep": sweep}
    (RESULTS / "quality.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / "quality.md").write_text(markdown(table, sweep, meta))
    print(markdown(table, sweep, meta))


if __name__ == "__main__":
    main()
