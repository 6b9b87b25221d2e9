"""Experiment tracking: a no-op tracker and a wandb adapter behind one small interface.

``logger=none`` (the default) tracks nothing: the local report (:mod:`genbench.report`)
needs no account. ``logger=wandb`` runs wandb offline (no account, no network; sync later
with ``wandb sync``); ``logger.mode=online`` syncs live. Each job is one run named
``{solver}-{dataset}-s{seed} ({variant})`` (the variant: the job's other overrides, so the
runs of an NFE sweep differ), tagged with its solver and data set, grouped per sweep
(``GENBENCH_SWEEP_ID``, set by the sweep callback, unless ``logger.group`` is given), with the
resolved config, the training curves, the summary metrics (scalars; distances, losses and
times declared ``summary="min", goal="minimize"``), the sample scatter image and the job's
files as Artifacts (``samples``, ``results``, ``model``).
A run is always finished, with exit code 1 when its job failed; a tracking error is logged
as a warning and never costs a job its result. :func:`log_sweep` adds one run per sweep
(``job_type="report"``) holding the leaderboard and the per-job results as ``wandb.Table``.

References:
    L. Biewald, "Experiment tracking with Weights and Biases", 2020, https://wandb.ai.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from genbench.core.config import LoggerConfig, RunConfig
from genbench.run.files import MODEL_FILE, RESULTS_FILE, SAMPLES_FILE

__all__ = [
    "LOGGERS",
    "SWEEP_ID_ENV",
    "NullTracker",
    "Tracker",
    "WandbTracker",
    "log_sweep",
    "make_tracker",
    "run_name",
]

log = logging.getLogger(__name__)
LOGGERS = ("none", "wandb")
MODES = ("offline", "online", "disabled")
SWEEP_ID_ENV = "GENBENCH_SWEEP_ID"
JOB_TYPE = "train-eval"
# The files of a job logged as Artifacts, by artifact type.
ARTIFACTS = {"samples": SAMPLES_FILE, "results": RESULTS_FILE, "model": MODEL_FILE}
# Metrics where smaller is better: wandb keeps their minimum as the run's summary.
MINIMISED = re.compile(r"(w2|tv|mmd|nll|kl)(_ratio|_floor)?$|_loss$|_seconds$")

F = TypeVar("F", bound=Callable[..., Any])


# Overrides already spelt by the base name (or that never change a result).
_NAMED_KEYS = ("solver", "dataset", "seed")


def run_name(rc: RunConfig, variant: str | None = None) -> str:
    """``{solver}-{dataset}-s{seed}``, then `` ({variant})`` when the job has other overrides.

    ``variant`` is a Hydra ``override_dirname`` (``key=value`` joined by commas); the
    selections already in the base name are dropped from it.
    """
    base = f"{rc.solver.get('name')}-{rc.dataset.get('name')}-s{rc.seed}"
    items = [item for item in (variant or "").split(",")
             if item and item.partition("=")[0].lstrip("+~") not in _NAMED_KEYS]
    return f"{base} ({','.join(items)})" if items else base


def _never_raises(method: F) -> F:
    """Tracking must not lose a result: log a tracking error and carry on."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as err:  # noqa: BLE001 - any wandb failure is only a warning
            log.warning("tracking: %s failed: %s: %s", method.__name__, type(err).__name__, err)
            return None

    return wrapper  # type: ignore[return-value]


class Tracker:
    """Interface: training curves, a summary with figures, and a final status."""

    def log_train(self, step: int, values: dict[str, float]) -> None:
        """Called by the training loop every ``log_every`` steps."""

    def log_summary(self, metrics: dict[str, Any], figures: dict[str, Path]) -> None:
        """Final metrics and the paths of figures to attach."""

    def finish(self, result: dict[str, Any]) -> None:
        """Close the run; ``result["status"]`` is ``ok`` or ``failed``."""


class NullTracker(Tracker):
    """``logger=none``: tracking off."""


def _init_wandb(cfg: LoggerConfig, *, name: str, job_type: str, config: dict[str, Any],
                directory: Path, group: str | None, tags: Sequence[str] = ()) -> Any:
    try:
        import wandb
    except ImportError as err:  # pragma: no cover - wandb is a core dependency
        raise ImportError("logger=wandb needs wandb: pip install wandb") from err
    if cfg.mode not in MODES:
        raise ValueError(f"logger.mode must be one of {', '.join(MODES)}, got {cfg.mode!r}")
    directory.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_SILENT", "true")
    return wandb.init(
        project=cfg.project, entity=cfg.entity, mode=cfg.mode, dir=str(directory),
        group=group, job_type=job_type, name=name, config=config,
        tags=list(dict.fromkeys([*cfg.tags, *tags])),
        reinit="create_new",
    )


def _define_minimised(run: Any, key: str) -> None:
    """``define_metric(key, summary="min", goal="minimize")``; wandb >= 0.2x dropped ``goal``
    (the minimum is then the only hint), so it is passed only where the API takes it."""
    try:
        takes_goal = "goal" in inspect.signature(run.define_metric).parameters
    except (TypeError, ValueError):
        takes_goal = False
    if takes_goal:
        run.define_metric(key, summary="min", goal="minimize")
    else:
        run.define_metric(key, summary="min")


class WandbTracker(Tracker):
    """One wandb run per job; see the module docstring for what is logged."""

    def __init__(self, cfg: LoggerConfig, config: dict[str, Any], name: str, output_dir: Path):
        import wandb

        self.wandb = wandb
        self.output_dir = Path(output_dir)
        tags = [str(config.get(k, {}).get("name")) for k in ("solver", "dataset")
                if isinstance(config.get(k), dict) and config[k].get("name")]
        self.run = _init_wandb(cfg, name=name, job_type=JOB_TYPE, config=config,
                               directory=Path(cfg.dir or output_dir),
                               group=cfg.group or os.environ.get(SWEEP_ID_ENV), tags=tags)
        self.run.define_metric("train/step")
        self.run.define_metric("train/*", step_metric="train/step")

    @_never_raises
    def log_train(self, step: int, values: dict[str, float]) -> None:
        self.run.log({"train/step": step} | {f"train/{k}": v for k, v in values.items()})

    @_never_raises
    def log_summary(self, metrics: dict[str, Any], figures: dict[str, Path]) -> None:
        scalars = {k: v for k, v in metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        for key in scalars:
            if MINIMISED.search(key):
                _define_minimised(self.run, key)
        images = {k: self.wandb.Image(str(p)) for k, p in figures.items() if Path(p).exists()}
        self.run.log(scalars | images)
        # One value per job: the summary holds it as a scalar (log keeps the "min" view).
        self.run.summary.update(scalars)
        # Method names ("exact", "sinkhorn") are strings: keep them beside the numbers.
        self.run.summary.update({k: v for k, v in metrics.items() if isinstance(v, str)})
        # The headline with its interval and the verdict, as text (the _low/_high are above).
        from genbench.eval.verdict import describe  # here: reading results needs no torch

        if describe(metrics):
            self.run.summary["verdict"] = "; ".join(describe(metrics))
            self.run.summary["worse_than_reference"] = bool(metrics.get("worse_than_reference"))

    @_never_raises
    def log_artifacts(self) -> None:
        """The job's files (present ones), each an Artifact named ``run-{id}-{kind}``."""
        for kind, filename in ARTIFACTS.items():
            path = self.output_dir / filename
            if path.is_file():
                artifact = self.wandb.Artifact(f"run-{self.run.id}-{kind}", type=kind)
                artifact.add_file(str(path))
                self.run.log_artifact(artifact)

    @_never_raises
    def finish(self, result: dict[str, Any]) -> None:
        failed = result.get("status") != "ok"
        self.run.summary["status"] = result.get("status", "failed")
        if failed:
            self.run.summary["error"] = f"{result.get('error_type')}: {result.get('error')}"
        self.log_artifacts()
        self.run.finish(exit_code=1 if failed else 0)


def make_tracker(cfg: LoggerConfig, *, config: dict[str, Any], name: str,
                 output_dir: Path) -> Tracker:
    """The tracker ``cfg.name`` selects (``none`` or ``wandb``)."""
    if cfg.name == "none":
        return NullTracker()
    if cfg.name == "wandb":
        return WandbTracker(cfg, config, name, output_dir)
    raise ValueError(f"unknown logger {cfg.name!r}; available: {', '.join(LOGGERS)}")


def _table(wandb: Any, rows: Sequence[Mapping[str, Any]]) -> Any:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])


def log_sweep(cfg: LoggerConfig | Mapping[str, Any], *, group: str, directory: Path,
              tables: Mapping[str, Sequence[Mapping[str, Any]]],
              images: Mapping[str, Path | Sequence[tuple[str, Path]]] | None = None,
              ) -> Path | None:
    """Log a sweep's tables (lists of flat rows) and figures as one ``job_type="report"`` run.

    ``images`` maps a key to one image or to a list of ``(caption, path)``. Images go beside
    the tables, not in their cells: offline, wandb writes an image cell as the bare word
    "Image" (wandb/wandb#4611). Returns the run's local folder, or ``None`` when tracking
    is off.
    """
    if not isinstance(cfg, LoggerConfig):
        from genbench.core.config import validate

        cfg = validate(LoggerConfig, cfg, what="the logger config")
    if cfg.name != "wandb":
        return None
    run = _init_wandb(cfg, name=f"report-{group}", job_type="report", config={"sweep": group},
                      directory=Path(cfg.dir or directory), group=cfg.group or group)
    import wandb

    folder = Path(run.dir).parent
    try:
        for key, rows in tables.items():
            if rows:
                run.log({key: _table(wandb, rows)})
        media = {}
        for key, value in (images or {}).items():
            if isinstance(value, (str, Path)):
                media[key] = wandb.Image(str(value))
            else:
                media[key] = [wandb.Image(str(p), caption=c) for c, p in value]
        run.log(media)
    finally:
        run.finish()
    return folder
