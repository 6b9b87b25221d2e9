"""Hydra hooks around a sweep: wandb grouping, a line per finished job, the leaderboard.

:class:`SweepCallback` is registered in ``configs/config.yaml`` (``hydra.callbacks.sweep``)
and runs with every launcher: its job hooks run in the job's own process (a joblib worker,
a SLURM node), its sweep hook in the process that launched the sweep, after every job ended.

- ``on_multirun_start`` opens a progress bar over the sweep's jobs (done, ETA) when the
  jobs run in this process (the basic launcher) and stderr is a terminal;
- ``on_job_start`` names the sweep (``GENBENCH_SWEEP_ID``), so each job's wandb run joins
  its sweep's group;
- ``on_job_end`` logs one line: the job's status and headline numbers;
- ``on_multirun_end`` writes the sweep's leaderboard
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
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from genbench.run.tracking import SWEEP_ID_ENV
from genbench.sweep.progress import advance_sweep_bar, close_sweep_bar, open_sweep_bar

__all__ = ["LAUNCHER_PLUGINS", "SweepCallback", "job_line", "missing_launcher_hint", "sweep_id"]

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


def job_line(result: dict[str, Any], number: Any = None) -> str:
    """One line: a finished job's status and headline numbers."""
    name = f"{result.get('solver')}-{result.get('dataset')}-s{result.get('seed')}"
    head = f"job {number}: " if number is not None else ""
    if result.get("skipped"):
        return f"{head}skipped {name} (result exists)"
    if result.get("status") != "ok":
        return f"{head}FAILED {name}: {result.get('error_type')}: {result.get('error')}"
    m = result.get("metrics", {})

    def num(key: str, fmt: str) -> str:
        value = m.get(key)
        return format(value, fmt) if isinstance(value, (int, float)) else "-"

    return (f"{head}ok {name}: W2/floor {num('data_w2_ratio', '.3g')} "
            f"(W2 {num('data_w2', '.4g')}, floor {num('data_w2_floor', '.4g')}) | "
            f"NFE {num('nfe', 'g')} | train {num('train_seconds', '.1f')} s")


class SweepCallback(Callback):
    """Group a sweep's wandb runs, log a line per job, write the leaderboard at the end."""

    def __init__(self, report: bool = True, plots: bool = True) -> None:
        self.report = report
        self.plots = plots
        self._set_sweep_id = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
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
        if ok:
            log.info(job_line(job_return.return_value, number))
        else:  # return_value would re-raise the job's exception
            log.error("job %s raised: %r", number, job_return._return_value)
        advance_sweep_bar(self, ok and job_return.return_value.get("status") == "ok")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        close_sweep_bar(self)
        if not self.report:
            return
        sweep_dir = Path(str(config.hydra.sweep.dir))
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
    lines = [f"[genbench] sweep done: {len(board.jobs)} jobs, "
             f"{len(board.jobs) - len(board.failed)} ok, {len(board.failed)} failed"]
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
