"""Robustness of the solvers' defaults: W2/floor of every solver on every built-in data set.

One default configuration per solver (its Config dataclass), the same for every data set:
the 2-D sets and ``gmm`` at ``dataset.dim=10``. Each job goes through
:func:`genbench.run.pipeline.run` (the path a user's sweep takes) into a fixed folder
``<out>/<solver>-<dataset>-s<seed>``; the pipeline's resume skips a job whose results.json
holds a successful result for the same config and re-runs it when a default changed. The
table is built from the results.json files found under ``--out``, so the script can be
stopped and re-run at any time. Results go to ``benchmarks/results/robustness.{json,md}``.

    python benchmarks/robustness.py --seeds 0                  # 1-seed pass, 45 jobs
    python benchmarks/robustness.py --solvers jko --datasets swissroll --seeds 0 1 2
    python benchmarks/robustness.py --collect                  # tabulate only

Bar (issue 12, item 3): every solver's mean data W2/floor <= 1.5 on every set.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SOLVERS = ["ddpm", "lsb", "pfode", "jko", "cfm"]
# Each set with the overrides that select it; gmm is the one set run above two dimensions.
DATASETS: dict[str, list[str]] = {
    **{name: [f"dataset={name}"] for name in (
        "moons", "8gaussians", "checkerboard", "swissroll", "circles", "pinwheel", "2spirals",
        "25gaussians")},
    "gmm10": ["dataset=gmm", "dataset.dim=10"],
}
BAR = 1.5
METRICS = ("data_w2", "data_w2_floor", "data_w2_ratio", "latent_w2_ratio", "nfe",
           "train_seconds", "sample_seconds", "nll")


def job_config(solver: str, dataset: str, seed: int, cache_dir: str,
               overrides: tuple[str, ...] = ()) -> Any:
    from hydra import compose, initialize_config_dir

    from genbench.sweep.schemas import register_schemas

    register_schemas()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose(config_name="config", overrides=[
            f"solver={solver}", *DATASETS[dataset], f"seed={seed}", "progress=false",
            "device=cpu", f"cache_dir={cache_dir}", *overrides])


def folder(out: Path, solver: str, dataset: str, seed: int) -> Path:
    return out / f"{solver}-{dataset}-s{seed}"


def run_job(solver: str, dataset: str, seed: int, out: Path, cache_dir: str,
            overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    import torch

    from genbench.run.pipeline import run

    torch.set_num_threads(1)
    return run(job_config(solver, dataset, seed, cache_dir, overrides),
               folder(out, solver, dataset, seed))


def collect(out: Path) -> list[dict[str, Any]]:
    """One row per finished job under ``out`` (failed jobs included, with their error)."""
    rows = []
    for path in sorted(out.glob("*-s*/results.json")):
        solver, rest = path.parent.name.split("-", 1)
        dataset, seed = rest.rsplit("-s", 1)
        result = json.loads(path.read_text())
        row: dict[str, Any] = {"solver": solver, "dataset": dataset, "seed": int(seed),
                               "status": result.get("status")}
        sampler = (result.get("config") or {}).get("solver", {}).get("sampler")
        if sampler is not None:  # which sampler made the samples (ddpm, pfode)
            row["sampler"] = sampler
        if row["status"] != "ok":
            row["error"] = result.get("error")
        else:
            row |= {k: result["metrics"][k] for k in METRICS if k in result["metrics"]}
            blocks = result.get("train", {}).get("blocks") if isinstance(
                result.get("train"), dict) else None
            if blocks is not None:
                row["blocks"] = len(blocks)
        rows.append(row)
    return rows


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    table = []
    for solver in SOLVERS:
        for dataset in DATASETS:
            ok = [r for r in rows if (r["solver"], r["dataset"]) == (solver, dataset)
                  and r["status"] == "ok"]
            cell: dict[str, Any] = {"solver": solver, "dataset": dataset, "seeds": len(ok)}
            if ok:
                ratios = [r["data_w2_ratio"] for r in ok]
                cell |= {
                    "ratio": statistics.mean(ratios),
                    "ratio_std": statistics.stdev(ratios) if len(ratios) > 1 else 0.0,
                    "ratio_max": max(ratios), "per_seed": ratios,
                    "nfe": statistics.mean(r["nfe"] for r in ok),
                    "train_s": statistics.mean(r["train_seconds"] for r in ok),
                    "pass": statistics.mean(ratios) <= BAR,
                }
                if all(r.get("nll") is not None for r in ok):
                    cell["nll"] = statistics.mean(r["nll"] for r in ok)
            table.append(cell)
    return table


def markdown(table: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    sets = list(DATASETS)
    lines = [
        "# Robustness of the default configurations", "",
        f"{meta['machine']}; identity encoder, n_test 2,000; every solver with its Config "
        "dataclass defaults, the same for every set (gmm10 = `dataset=gmm dataset.dim=10`). "
        f"Cell: mean data W2/floor over the seeds run (number of seeds in brackets); "
        f"✗ marks a mean above the bar {BAR}; — a cell not run.", "",
        *[f"- {h}" for h in meta.get("notes", [])], "",
        "| solver | " + " | ".join(sets) + " |",
        "|---|" + "---|" * len(sets),
    ]
    for solver in SOLVERS:
        cells = []
        for dataset in sets:
            c = next(c for c in table if (c["solver"], c["dataset"]) == (solver, dataset))
            if not c["seeds"]:
                cells.append("—")
            else:
                flag = "" if c["pass"] else " ✗"
                cells.append(f"{c['ratio']:.2f}{flag} ({c['seeds']})")
        lines.append(f"| {solver} | " + " | ".join(cells) + " |")
    lines += ["", "Per cell: seeds, per-seed ratios, NFE, train seconds (wall, shared CPU).", "",
              "| solver | data set | seeds | ratios | mean ± std | NFE | train s |",
              "|---|---|---|---|---|---|---|"]
    for c in table:
        if c["seeds"]:
            lines.append(
                f"| {c['solver']} | {c['dataset']} | {c['seeds']} | "
                f"{', '.join(f'{x:.2f}' for x in c['per_seed'])} | "
                f"{c['ratio']:.2f} ± {c['ratio_std']:.2f} | {c['nfe']:.0f} | "
                f"{c['train_s']:.0f} |")
    return "\n".join(lines) + "\n"


def write(out: Path, notes: list[str], save: bool = True) -> str:
    """The table of the runs under ``out``; saved to benchmarks/results unless ``save`` is
    false (a diagnosis run with ``--set`` overrides is not the defaults' table)."""
    rows = collect(out)
    table = summarise(rows)
    meta = {"machine": f"{os.cpu_count()}-core CPU (shared)", "bar": BAR, "notes": notes,
            "sweep_dir": str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out),
            "date": time.strftime("%Y-%m-%d %H:%M")}
    text = markdown(table, meta)
    if not save:
        return text
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name, content in (("robustness.json", json.dumps(
            {"meta": meta, "summary": table, "runs": rows}, indent=2) + "\n"),
                          ("robustness.md", text)):
        tmp = RESULTS / (name + ".tmp")
        tmp.write_text(content)
        tmp.replace(RESULTS / name)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--solvers", nargs="*", default=SOLVERS, choices=SOLVERS)
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="jobs at a time")
    parser.add_argument("--collect", action="store_true", help="tabulate only, run nothing")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / ".runs" / "robustness")
    parser.add_argument("--cache-dir", default="/tmp/gb-robust-cache")
    parser.add_argument("--note", action="append", default=[], help="a line for the table")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a Hydra override for every job (e.g. solver.steps=600); a "
                             "diagnosis run, not the defaults: use its own --out")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not args.collect:
        from joblib import Parallel, delayed

        jobs = [(s, d, seed) for seed in args.seeds for d in args.datasets for s in args.solvers]
        for result in Parallel(n_jobs=args.jobs, return_as="generator")(
                delayed(run_job)(s, d, seed, args.out, args.cache_dir, tuple(args.set))
                for s, d, seed in jobs):
            m = result.get("metrics", {})
            print(result.get("solver"), result.get("dataset"), result.get("seed"),
                  result["status"], m.get("data_w2_ratio"), m.get("train_seconds"), flush=True)
    print(write(args.out, args.note, save=not args.set))


if __name__ == "__main__":
    main()
