"""Equal tuning: ``genbench -m experiment=tune solver=NAME`` runs Hydra's Optuna sweeper.

Every solver gets one study of the same ``hydra.sweeper.n_trials`` trials (the experiment's
setting), over a search space of the shared training keys, each trial scored on a validation
split held out of the training rows (``eval.split=validation``,
:mod:`genbench.data.validation`): the test points are never read while tuning. The task
returns the scalar objective, :data:`OBJECTIVE` (W2 over its floor, the leaderboard's rank
metric; a failed trial, or one whose metric is missing, returns +inf: the worst value, so
the study goes on -- Optuna stops the whole sweep on a NaN). When the sweep ends,
:func:`write_tune_summary` writes ``tune.json`` and ``tune.md`` beside the trials: per
solver, the number of trials, the best value and the chosen settings as command-line
overrides, to re-run on the test split (``genbench solver=ddpm solver.lr=...``).
``genbench-tune solver=ddpm,cfm`` runs one such study per solver and summarises them together.

References:
    T. Akiba, S. Sano, T. Yanase, T. Ohta, M. Koyama, "Optuna: A Next-generation
    Hyperparameter Optimization Framework", KDD 2019 (the TPE sampler used here).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from genbench.core.storage import atomic_write
from genbench.sweep.jobs import as_number, load_jobs

__all__ = ["OBJECTIVE", "TUNE_FILES", "is_tuning", "main", "objective", "searched_keys",
           "write_tune_summary"]

OBJECTIVE = "data_w2_ratio"
TUNE_FILES = ("tune.json", "tune.md")


def is_tuning(hydra_cfg: DictConfig | Any) -> bool:
    """Whether the sweep is driven by an optimising sweeper (Optuna) that needs a scalar."""
    target = str(OmegaConf.select(hydra_cfg, "sweeper._target_", default="") or "")
    return "optuna" in target.lower()


def objective(result: dict[str, Any]) -> float:
    """The scalar a tuning sweep minimises: :data:`OBJECTIVE`, +inf for a failed job."""
    if result.get("status") != "ok":
        return math.inf
    value = as_number((result.get("metrics") or {}).get(OBJECTIVE))
    return value if math.isfinite(value) else math.inf


def _trial_params(job: Any, searched: list[str]) -> dict[str, Any]:
    return {key: job.params.get(key) for key in searched}


def write_tune_summary(sweep_dir: str | Path, searched: list[str]) -> dict[str, Any]:
    """Write ``tune.json`` and ``tune.md`` in ``sweep_dir``: per solver and data set, the
    trials, the best one's value and its settings (``searched``: the tuned keys)."""
    root = Path(sweep_dir)
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for job in load_jobs(root):
        groups[job.solver, job.dataset].append(job)
    studies = []
    for (solver, dataset), jobs in sorted(groups.items()):
        trials = [{"params": _trial_params(j, searched), "status": j.status,
                   "value": as_number(j.metrics.get(OBJECTIVE)) if j.ok else None,
                   "folder": j.folder.name} for j in jobs]
        scored = [t for t in trials if t["value"] is not None and math.isfinite(t["value"])]
        best = min(scored, key=lambda t: t["value"]) if scored else None
        studies.append({
            "solver": solver, "dataset": dataset, "n_trials": len(trials),
            "n_failed": sum(t["status"] != "ok" for t in trials), "objective": OBJECTIVE,
            "split": "validation", "best_value": best["value"] if best else None,
            "best_params": best["params"] if best else None,
            "overrides": " ".join(f"{k}={v}" for k, v in best["params"].items()) if best else "",
            "trials": trials})
    summary = {"sweep_dir": str(root), "searched": searched, "studies": studies}
    atomic_write(root / TUNE_FILES[0],
                 lambda fh: fh.write(json.dumps(summary, indent=2).encode()))
    lines = [f"# Tuning on the validation split: `{root}`", "",
             f"Objective: `{OBJECTIVE}` (minimised); searched: {', '.join(searched) or '-'}.",
             "", "| solver | data set | trials | failed | best | chosen settings |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {s['solver']} | {s['dataset']} | {s['n_trials']} | {s['n_failed']} | "
              + (f"{s['best_value']:.4g}" if s["best_value"] is not None else "-")
              + f" | `{s['overrides']}` |" for s in studies]
    atomic_write(root / TUNE_FILES[1], lambda fh: fh.write(("\n".join(lines) + "\n").encode()))
    return summary


def searched_keys(config: DictConfig) -> list[str]:
    """The keys the sweeper searches (``hydra.sweeper.params`` and the command line's sweep
    overrides, e.g. ``'solver.sample_steps=choice(50,100)'``), sorted."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.select(config, "hydra.sweeper.params")
    keys = set(OmegaConf.to_container(params)) if params is not None else set()
    task = list(OmegaConf.select(config, "hydra.overrides.task") or [])
    keys |= {o.key_or_group for o in OverridesParser.create().parse_overrides(task)
             if o.is_sweep_override()}
    return sorted(keys)


def main(argv: list[str] | None = None) -> int:
    """``genbench-tune solver=ddpm,cfm [overrides]``: one Optuna study per solver, each of the
    same ``hydra.sweeper.n_trials`` trials, under ``ROOT/<solver>``; then one ``tune.md`` over
    all of them in ``ROOT`` (``hydra.sweep.dir=ROOT``; default ``multirun/tune/<now>``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    chosen = [a for a in args if a.startswith("solver=")]
    if len(chosen) != 1 or any(a in ("-m", "--multirun") for a in args):
        print("usage: genbench-tune solver=NAME[,NAME...] [overrides, e.g. "
              "hydra.sweeper.n_trials=10 budget.train_steps=2000]", file=sys.stderr)
        return 2
    solvers = chosen[0].split("=", 1)[1].split(",")
    rest = [a for a in args if a not in chosen and not a.startswith("hydra.sweep.dir=")]
    root = next((a.split("=", 1)[1] for a in args if a.startswith("hydra.sweep.dir=")),
                f"multirun/tune/{datetime.now():%Y-%m-%d/%H-%M-%S}")
    failed = [s for s in solvers if subprocess.call(
        [sys.executable, "-m", "genbench", "-m", "experiment=tune", f"solver={s}", *rest,
         f"hydra.sweep.dir={root}/{s}"])]
    searched: set[str] = set()
    for s in solvers:
        path = Path(root) / s / TUNE_FILES[0]
        if path.exists():
            searched |= set(json.loads(path.read_text())["searched"])
    write_tune_summary(root, sorted(searched))
    print((Path(root) / TUNE_FILES[1]).read_text())
    if failed:
        print(f"genbench-tune: the sweeps of {', '.join(failed)} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
