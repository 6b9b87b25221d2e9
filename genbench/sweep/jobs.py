"""The jobs of a sweep, read from their ``results.json``, each labelled by its *variant*.

A variant is the set of hyper-parameters that vary within a (solver, data set) pair, other
than the seed and the settings that do not change a result; the leaderboard
(:mod:`genbench.report.leaderboard`) and the rate study
(:mod:`genbench.report.rates.study`) group jobs by it.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.core.config import is_result_neutral
from genbench.core.storage import read_json
from genbench.run.files import RESULTS_FILE

__all__ = ["IDENTITY_KEYS", "Job", "as_number", "load_jobs"]

log = logging.getLogger(__name__)
# Never a variant: the job's identity, and the result-neutral keys (is_result_neutral).
IDENTITY_KEYS = ("seed", "solver.name", "dataset.name")

def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def as_number(value: Any) -> float:
    """A metric as a float (JSON keeps NaN as null and infinities as strings)."""
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


@dataclass
class Job:
    """One job of the sweep, read from its ``results.json``."""

    folder: Path
    status: str
    solver: str
    dataset: str
    seed: int | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    loss_curve: list[list[float]]
    error: str = ""
    varying: dict[str, str] = field(default_factory=dict)  # parameter -> value, as text

    @classmethod
    def read(cls, folder: Path, data: dict[str, Any]) -> Job:
        config = data.get("config")
        if not config:  # failed before validation: fall back on what Hydra saved
            from omegaconf import OmegaConf

            saved = folder / ".hydra" / "config.yaml"
            config = OmegaConf.to_container(OmegaConf.load(saved)) if saved.exists() else {}
        params = {k: v for k, v in _flatten(dict(config)).items()
                  if k not in IDENTITY_KEYS and not is_result_neutral(k)}
        error = f"{data.get('error_type', 'Error')}: {data.get('error', '')}"
        return cls(folder=folder, status=str(data.get("status", "failed")),
                   solver=str(data.get("solver") or config.get("solver", {}).get("name", "?")),
                   dataset=str(data.get("dataset") or config.get("dataset", {}).get("name", "?")),
                   seed=data.get("seed", config.get("seed")), params=params,
                   metrics=data.get("metrics") or {},
                   loss_curve=(data.get("train") or {}).get("loss_curve") or [],
                   error="" if data.get("status") == "ok" else error)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def variant(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.varying.items())


def _short(key: str) -> str:
    return key.removeprefix("solver.")


def _value_str(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else json.dumps(value).strip('"')


def _assign_variants(jobs: list[Job]) -> None:
    """Label each job by the parameters that vary within its (solver, data set) pair."""
    pairs: dict[tuple[str, str], list[Job]] = defaultdict(list)
    for job in jobs:
        if job.params:
            pairs[job.solver, job.dataset].append(job)
    varying: dict[str, set[str]] = defaultdict(set)
    for (solver, _), group in pairs.items():
        for key in set().union(*(j.params for j in group)):
            if len({json.dumps(j.params.get(key), sort_keys=True) for j in group}) > 1:
                varying[solver].add(key)
    for job in jobs:
        if job.params:
            job.varying = {_short(k): _value_str(job.params.get(k))
                           for k in sorted(varying[job.solver])}


def load_jobs(sweep_dir: str | Path) -> list[Job]:
    """Every job under ``sweep_dir`` (any depth), with its variant label."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"sweep folder not found: {root}")
    jobs = []
    for path in sorted(root.rglob(RESULTS_FILE)):
        data = read_json(path)
        if data is None:
            log.warning("unreadable, skipped: %s", path)
            continue
        jobs.append(Job.read(path.parent, data))
    if not jobs:
        raise FileNotFoundError(f"no {RESULTS_FILE} under {root}; pass a sweep folder "
                                "(hydra.sweep.dir, e.g. multirun/2026-01-31/12-00-00)")
    _assign_variants(jobs)
    return jobs
