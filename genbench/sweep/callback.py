"""Hydra hooks around a sweep: wandb grouping, a line per finished job, the leaderboard.

:class:`SweepCallback` is registered in ``configs/config.yaml`` (``hydra.callbacks.sweep``)
and runs with every launcher: its job hooks run in the job's own process (a joblib worker,
a SLURM node), its sweep hook in the process that launched the sweep, after every job ended.

- ``on_multirun_start`` opens a progress bar over the sweep's jobs (done, ETA) when the
  jobs run in this process (the basic launcher) and stderr is a terminal, and with the
  joblib launcher makes a dead worker fail its job, not the sweep
  (:mod:`genbench.sweep.launcher`);
- ``on_job_start`` names the sweep (``GENBENCH_SWEEP_ID``), so each job's wandb run joins
  its sweep's group;
- ``on_job_end`` logs one line: the job's status and headline numbers;
- ``on_multirun_end`` counts the sweep's failed jobs (the CLI exits 1 on any), writes the
  sweep's leaderboard
  (:func:`genbench.report.write_report`) to ``<sweep dir>/report/`` and, with
  ``logger=wandb``, logs it as tables in a run of its own.

The hooks never fail a sweep: a reporting error is a warning. Turn the report off with
``hydra.callbacks.sweep.report=false`` (or drop the callback: ``~hydra.callbacks.sweep``).
:func:`missing_launcher_hint` turns a missing launcher plugin into an install command.

References:
    O. Yadan, "Hydra - A framework for elegantly configuring complex applications", 2019,
    https://github.com/facebookresearch/hydra (callbacks: hydra.cc/docs/experimental/callbacks).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from genbench.run.tracking import SWEEP_ID_ENV
from genbench.sweep.lines import job_line
from genbench.sweep.progress import advance_sweep_bar, close_sweep_bar, open_sweep_bar

__all__ = ["LAUNCHER_PLUGINS", "SweepCallback", "failed_jobs", "job_line", "missing_launcher_hint",
           "sweep_id"]

log = logging.getLogger("genbench.sweep")
# Launcher option (``launcher=...`` or Hydra's ``hydra/launcher=...``) -> (plugin, extra).
LAUNCHER_PLUGINS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "ray": ("hydra_plugins.hydra_ray_launcher", "ray"),
    "ray_aws": ("hydra_plugins.hydra_ray_launcher", "ray"),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # no hydra_plugins namespace at all
        return False


def missing_launcher_hint(overrides: Sequence[str]) -> str | None:
    """An install command when ``overrides`` select a launcher whose plugin is missing.

    Hydra alone stops with "Could not find 'hydra/launcher/ray'"; call this on the command
    line's arguments first to say what to install instead.
    """
    for item in overrides:
        key, _, value = item.lstrip("+~").partition("=")
        if key in ("launcher", "hydra/launcher") and value in LAUNCHER_PLUGINS:
            module, extra = LAUNCHER_PLUGINS[value]
            if not _installed(module):
                package = module.split(".")[-1].replace("_", "-")
                return (f"genbench: {key}={value} needs the Hydra launcher plugin {package}, "
                        f"which is not installed: pip install 'genbench[{extra}]'")
    return None


def sweep_id(sweep_dir: str | Path) -> str:
    """A readable id of a sweep folder, e.g. ``2026-01-31_12-00-00`` (its last two parts)."""
    return "_".join(Path(sweep_dir).resolve().parts[-2:])


def _is_multirun(config: DictConfig) -> bool:
    mode = OmegaConf.select(config, "hydra.mode")
    return getattr(mode, "name", mode) == RunMode.MULTIRUN.name


# (failed, finished) jobs of the last multirun in this process; the CLI exits 1 on failures.
LAST_MULTIRUN: dict[str, Any] = {}


def _finished_since(data: dict[str, Any], since: datetime | None) -> bool:
    if since is None:
        return True
    try:
        return datetime.fromisoformat(str(data.get("finished"))) >= since
    except ValueError:  # no time recorded: count it
        return True


def failed_jobs(sweep_dir: Path, since: datetime | None = None) -> tuple[list[str], int]:
    """The folders of failed jobs under ``sweep_dir`` and the number of jobs found.

    With ``since``, only jobs that finished after it count (a sweep re-run into an old folder
    is judged by its own jobs). A result that cannot be read counts as failed; so does a
    re-run that failed beside a kept result (``results.failed.json``).
    """
    from genbench.core.storage import read_json
    from genbench.run.files import FAILED_RESULTS_FILE, RESULTS_FILE

    failed, total = [], 0
    for path in sorted(sweep_dir.rglob(RESULTS_FILE)):
        data = read_json(path)
        beside = read_json(path.parent / FAILED_RESULTS_FILE)
        rerun_failed = (data is not None and data.get("status") == "ok"
                        and beside is not None and _finished_since(beside, since))
        if data is None or rerun_failed:
            failed.append(str(path.parent))
            total += 1
        elif _finished_since(data, since):
            total += 1
            if data.get("status") != "ok":
                failed.append(str(path.parent))
    return failed, total


def _tune_summary(config: DictConfig, sweep_dir: Path) -> None:
    """A tuning sweep's chosen settings (:mod:`genbench.sweep.tune`); never fails the sweep."""
    try:
        from genbench.sweep.tune import searched_keys, write_tune_summary

        summary = write_tune_summary(sweep_dir, searched_keys(config))
        for study in summary["studies"]:
            print(f"[genbench] tuned {study['solver']} on {study['dataset']} "
                  f"({study['n_trials']} trials, validation split): best "
                  f"{study['objective']} {study['best_value']} with {study['overrides']}",
                  flush=True)
    except Exception as err:  # noqa: BLE001 - the trials' results are already safe
        print(f"[genbench] tune summary failed: {type(err).__name__}: {err}", flush=True)


class SweepCallback(Callback):
    """Group a sweep's wandb runs, log a line per job, write the leaderboard at the end."""

    def __init__(self, report: bool = True, plots: bool = True) -> None:
        self.report = report
        self.plots = plots
        self._set_sweep_id = False
        self._started: datetime | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._started = datetime.now(timezone.utc)
        target = str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
        if target.endswith("JoblibLauncher"):  # a dead worker fails its job, not the sweep
            from genbench.sweep.launcher import install

            install()
        open_sweep_bar(self, config)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if _is_multirun(config) and SWEEP_ID_ENV not in os.environ:
            os.environ[SWEEP_ID_ENV] = sweep_id(config.hydra.sweep.dir)
            self._set_sweep_id = True

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if self._set_sweep_id:  # the next sweep in this process gets its own id
            os.environ.pop(SWEEP_ID_ENV, None)
            self._set_sweep_id = False
        if not _is_multirun(config):
            return
        number = OmegaConf.select(config, "hydra.job.num")
        ok = job_return.status == JobStatus.COMPLETED and isinstance(job_return.return_value,
                                                                     dict)
        if job_return.status == JobStatus.COMPLETED and isinstance(job_return.return_value,
                                                                   float):
            value = job_return.return_value  # a tuning trial's objective (genbench.sweep.tune)
            log.info("job %s: objective %.4g%s", number, value,
                     "" if math.isfinite(value) else " (failed: see its results.json)")
            advance_sweep_bar(self, math.isfinite(value))
            return
        if ok:
            log.info(job_line(job_return.return_value, number))
        else:  # return_value would re-raise the job's exception
            log.error("job %s raised: %r", number, job_return._return_value)
        advance_sweep_bar(self, ok and job_return.return_value.get("status") == "ok")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        close_sweep_bar(self)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if OmegaConf.select(config, "eval.split") == "validation":
            _tune_summary(config, sweep_dir)
        try:
            failed, total = failed_jobs(sweep_dir, self._started)
        except OSError as err:
            failed, total = [f"{sweep_dir} ({err})"], 0
        LAST_MULTIRUN.clear()
        LAST_MULTIRUN.update(sweep_dir=str(sweep_dir), failed=failed, total=total)
        if not self.report:
            return
        try:
            from genbench.report import Leaderboard, write_report

            board = Leaderboard.load(sweep_dir)
            files = write_report(board, plots=self.plots)
            print(_summary(board, files["html"]), flush=True)
            logger_cfg = OmegaConf.select(config, "logger")
            if logger_cfg is not None and logger_cfg.get("name") == "wandb":
                self._log_wandb(logger_cfg, board, files, sweep_dir)
        except Exception as err:  # noqa: BLE001 - the jobs' results are already safe
            print(f"[genbench] sweep report failed: {type(err).__name__}: {err}", flush=True)

    @staticmethod
    def _log_wandb(logger_cfg: DictConfig, board: Any, files: dict[str, Path],
                   sweep_dir: Path) -> None:
        from genbench.run.tracking import log_sweep

        samples = [(f"{j.solver}-{j.dataset}-s{j.seed}" + (f" ({j.variant})" if j.variant else ""),
                    j.folder / "samples.png") for j in board.jobs
                   if j.ok and (j.folder / "samples.png").exists()]
        images: dict[str, Any] = {f"report/{p.stem}": p for p in files.values()
                                  if p.suffix == ".png"}
        if samples:
            images["samples"] = samples
        log_sweep(OmegaConf.to_container(logger_cfg, resolve=True), group=sweep_id(sweep_dir),
                  directory=sweep_dir / "report",
                  tables={"leaderboard": board.rows(), "jobs": board.job_rows()}, images=images)


def _summary(board: Any, html: Path) -> str:
    lines = [f"[genbench] sweep done: {board.counts()}"]
    for dataset in board.datasets:
        best = next((e for e in board.entries if e.dataset == dataset and e.rank == 1), None)
        top = [e.label for e in board.entries if e.dataset == dataset and e.call is not None
               and e.call.group == 1]
        if best is not None and best.call is not None and not best.call.best and len(top) > 1:
            # No best unless significantly better than the next (docs/verdicts.md).
            lines.append(f"[genbench]   no significant best on {dataset}: tied on top: "
                         f"{', '.join(top)}")
        elif best is not None:
            metric = board.metric_for(dataset)
            mean = best.mean_std(metric)[0]
            lines.append(f"[genbench]   best on {dataset}: {best.label} "
                         f"({metric} {mean:.3g})")
    lines.append(f"[genbench] leaderboard: {html}")
    return "\n".join(lines)
