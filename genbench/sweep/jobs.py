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
from genbench.run.files import FAILED_RESULTS_FILE, RESULTS_FILE

__all__ = ["IDENTITY_KEYS", "Job", "Sweep", "as_number", "load_jobs", "scan_sweep"]

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

    rerun_error: str = ""  # a re-run that failed beside this finished result
    config_from_hydra: bool = False  # failed before its config was saved: Hydra's raw one

    @classmethod
    def read(cls, folder: Path, data: dict[str, Any]) -> Job:
        """The job saved in ``data``; ``ValueError`` naming the field when it is ill-typed."""
        _check_types(data)
        config = data.get("config")
        from_hydra = not config
        if from_hydra:  # failed before validation: fall back on what Hydra saved
            from omegaconf import OmegaConf

            saved = folder / ".hydra" / "config.yaml"
            config = OmegaConf.to_container(OmegaConf.load(saved)) if saved.exists() else {}
            if not isinstance(config, dict):
                raise ValueError(f"{saved} holds no config mapping")
        params = {k: v for k, v in _flatten(dict(config)).items()
                  if k not in IDENTITY_KEYS and not is_result_neutral(k)}
        error = f"{data.get('error_type', 'Error')}: {data.get('error', '')}"

        def name(key: str) -> str:
            part = config.get(key)
            return str(data.get(key) or (part.get("name", "?") if isinstance(part, dict)
                                         else "?"))

        return cls(folder=folder, status=str(data.get("status", "failed")),
                   solver=name("solver"), dataset=name("dataset"),
                   seed=data.get("seed", config.get("seed")), params=params,
                   metrics=data.get("metrics") or {},
                   loss_curve=(data.get("train") or {}).get("loss_curve") or [],
                   error="" if data.get("status") == "ok" else error,
                   config_from_hydra=from_hydra)

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


def _varying(group: list[Job]) -> set[str]:
    keys: set[str] = set().union(*(j.params for j in group)) if group else set()
    # a key one job lacks varies even when another sets it to null
    return {k for k in keys
            if len({json.dumps([k in j.params, j.params.get(k)], sort_keys=True, default=str)
                    for j in group}) > 1}


def _assign_variants(jobs: list[Job]) -> None:
    """Label each job by the parameters that vary within its (solver, data set) pair.

    The labels of successful jobs come from the keys successful jobs have: a failed job
    counts there only with its saved config (a swept ``lr`` that diverged) and only on those
    keys, so its stray settings (a misspelt key, Hydra's raw config of a job that failed
    before validation) never show in them. A failed job's label adds the keys in which it
    differs from its successful peers.
    """
    pairs: dict[tuple[str, str], list[Job]] = defaultdict(list)
    for job in jobs:
        if job.params:
            pairs[job.solver, job.dataset].append(job)
    ok_varying: dict[str, set[str]] = defaultdict(set)
    for (solver, _), group in pairs.items():
        ok_keys: set[str] = set().union(*(j.params for j in group if j.ok))
        voters = [j for j in group if j.ok or not j.config_from_hydra]
        ok_varying[solver] |= _varying(voters) & ok_keys
    for job in jobs:
        if not job.params:
            continue
        keys = ok_varying[job.solver]
        if not job.ok:
            peers = [j for j in pairs[job.solver, job.dataset] if j.ok] or [
                j for j in pairs[job.solver, job.dataset] if not j.ok]
            keys = keys | _varying([*peers, job]) if job not in peers else keys | _varying(peers)
        job.varying = {_short(k): _value_str(job.params.get(k)) for k in sorted(keys)}


def _check_types(data: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first field of a result that has the wrong type."""
    expected = {"status": str, "config": dict, "metrics": dict, "train": dict,
                "seed": int, "solver": str, "dataset": str, "error": str}
    for key, kind in expected.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ValueError(f"field {key!r} is {type(value).__name__}, "
                             f"expected {kind.__name__}")
    curve = (data.get("train") or {}).get("loss_curve")
    if curve is not None and not isinstance(curve, list):
        raise ValueError(f"field 'train.loss_curve' is {type(curve).__name__}, expected list")


def _identity(job: Job) -> str:
    return json.dumps([job.solver, job.dataset, job.seed, job.params], sort_keys=True,
                      default=str)


@dataclass
class Sweep:
    """What a sweep folder holds: readable jobs, unreadable results, ignored duplicates."""

    root: Path
    jobs: list[Job]
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # (file, why)
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # (ignored, kept)


def scan_sweep(sweep_dir: str | Path) -> Sweep:
    """Every job under ``sweep_dir`` (any depth), labelled; unreadable results listed.

    A ``results.json`` that is not JSON, not an object, or has an ill-typed field is
    *unreadable*: listed with the reason, never a traceback. Successful jobs with the same
    configuration and seed (the same job run twice) count once.
    """
    root = Path(sweep_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"sweep folder not found: {root}")
    sweep = Sweep(root, [])
    paths = sorted(root.rglob(RESULTS_FILE))
    for path in paths:
        data = read_json(path)
        if data is None:
            sweep.unreadable.append((path, "not a JSON object (truncated or corrupt)"))
            continue
        try:
            job = Job.read(path.parent, data)
        except (ValueError, TypeError, AttributeError, OSError) as err:
            sweep.unreadable.append((path, str(err)))
            continue
        failed = read_json(path.parent / FAILED_RESULTS_FILE)
        if job.ok and failed is not None:
            job.rerun_error = f"{failed.get('error_type', 'Error')}: {failed.get('error', '')}"
        sweep.jobs.append(job)
    for path, why in sweep.unreadable:
        log.warning("unreadable result %s: %s", path, why)
    if not paths:
        raise FileNotFoundError(f"no {RESULTS_FILE} under {root}; pass a sweep folder "
                                "(hydra.sweep.dir, e.g. multirun/2026-01-31/12-00-00)")
    seen: dict[str, Job] = {}
    unique = []
    for job in sweep.jobs:
        key = _identity(job)
        if job.ok and key in seen:
            sweep.duplicates.append((job.folder, seen[key].folder))
            continue
        if job.ok:
            seen[key] = job
        unique.append(job)
    sweep.jobs = unique
    _assign_variants(sweep.jobs)
    return sweep


def load_jobs(sweep_dir: str | Path) -> list[Job]:
    """The readable jobs under ``sweep_dir``, with their variant labels (see :func:`scan_sweep`)."""
    return scan_sweep(sweep_dir).jobs
