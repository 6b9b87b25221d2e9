"""Experiment tracking: a no-op tracker and a wandb adapter behind one small interface.

wandb runs offline by default (no account, no network); ``logger.mode=online`` syncs live.
Runs are named ``{solver}-{dataset}-s{seed}``; the resolved config, training curves,
summary metrics (W2 and TV defined as minimised) and the sample scatter image are logged,
and the run is finished whatever the job's outcome.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from genbench.config import LoggerConfig, RunConfig

__all__ = ["NullTracker", "Tracker", "WandbTracker", "make_tracker", "run_name"]

log = logging.getLogger(__name__)
LOGGERS = ("none", "wandb")


def run_name(rc: RunConfig) -> str:
    return f"{rc.solver.get('name')}-{rc.dataset.get('name')}-s{rc.seed}"


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


class WandbTracker(Tracker):
    def __init__(self, cfg: LoggerConfig, config: dict[str, Any], name: str, output_dir: Path):
        try:
            import wandb
        except ImportError as err:  # pragma: no cover - wandb is a core dependency
            raise ImportError("logger=wandb needs wandb: pip install wandb") from err
        if cfg.mode not in ("offline", "online", "disabled"):
            raise ValueError(f"logger.mode must be offline, online or disabled, got {cfg.mode!r}")
        self.wandb = wandb
        directory = Path(cfg.dir or output_dir)
        directory.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("WANDB_SILENT", "true")
        self.run = wandb.init(
            project=cfg.project, entity=cfg.entity, mode=cfg.mode, dir=str(directory),
            group=cfg.group or os.environ.get("GENBENCH_SWEEP_ID"), job_type="train-eval",
            name=name, config=config, tags=list(cfg.tags), reinit="create_new",
        )
        for key in ("data_w2", "data_w2_ratio", "latent_w2", "latent_w2_ratio", "data_tv",
                    "latent_tv"):
            self.run.define_metric(key, summary="min")
        self.run.define_metric("train/loss", step_metric="train/step")

    def log_train(self, step: int, values: dict[str, float]) -> None:
        self.run.log({"train/step": step} | {f"train/{k}": v for k, v in values.items()})

    def log_summary(self, metrics: dict[str, Any], figures: dict[str, Path]) -> None:
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        images = {k: self.wandb.Image(str(p)) for k, p in figures.items() if Path(p).exists()}
        self.run.log(scalars | images)
        self.run.summary.update(scalars)

    def finish(self, result: dict[str, Any]) -> None:
        failed = result.get("status") != "ok"
        if failed:
            self.run.summary["error"] = result.get("error", "")
        self.run.finish(exit_code=1 if failed else 0)


def make_tracker(cfg: LoggerConfig, *, config: dict[str, Any], name: str,
                 output_dir: Path) -> Tracker:
    if cfg.name == "none":
        return NullTracker()
    if cfg.name == "wandb":
        return WandbTracker(cfg, config, name, output_dir)
    raise ValueError(f"unknown logger {cfg.name!r}; available: {', '.join(LOGGERS)}")
