"""``launcher=joblib`` that survives a dead worker: the job fails, the sweep goes on.

Hydra's joblib launcher runs every job through one ``joblib.Parallel`` call. When a worker
process dies (the out-of-memory killer sends SIGKILL; a segfault), loky raises
``TerminatedWorkerError`` for the whole call: the healthy jobs in flight on the other
workers are lost, the later jobs never run, and nothing records what happened.

:func:`resilient_launch` keeps joblib's workers and settings and adds this:

1. jobs are collected as they finish, so a crash loses only the jobs in flight;
2. each worker first notes which job it starts in ``<sweep>/.genbench-running/<num>.json``
   (the job's folder, overrides and the worker's pid; the folder is removed at the end);
3. after a crash, every job that had started is run again *alone* on a fresh worker: a
   healthy one that was merely caught in the crash finishes; one whose worker dies again
   is the culprit, and is recorded as a failed job (``error_type: WorkerDied``, with the
   workers' exit codes) in its own ``results.json`` -- never replacing a finished result;
4. the jobs that had not started go back to the parallel pool.

The end-of-sweep callback then writes the report and the CLI exits non-zero (one failed job).

Hydra instantiates launchers only from the ``hydra_plugins`` package, which an editable
install does not extend; so rather than a launcher class of its own, genbench replaces the
joblib plugin's module-level ``launch`` with :func:`resilient_launch` (:func:`install`,
called by :class:`genbench.sweep.callback.SweepCallback` when a multirun starts).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra_plugins.hydra_joblib_launcher import _core
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from joblib import Parallel, delayed
from joblib.externals.loky.process_executor import BrokenProcessPool
from omegaconf import OmegaConf, open_dict

__all__ = ["install", "resilient_launch"]

log = logging.getLogger("genbench.sweep")
# Where workers note the job they start (removed when the launch ends).
MARKERS = ".genbench-running"
# Crashes in a row that hit no started job (a worker dying while it starts) before the
# remaining jobs are recorded as failed rather than retried.
MAX_BLIND_CRASHES = 2


def _start(idx: int, overrides: Sequence[str], hydra_context: Any, config: Any,
           task_function: Any, singleton_state: dict, markers: str) -> tuple[int, JobReturn]:
    """In the worker: note the job's folder and identity, then run it as Hydra's joblib does."""
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.num = idx
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
    HydraConfig.instance().set_config(sweep_config)  # resolves ${hydra:job.override_dirname}
    folder = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
    note = {"output_dir": str(folder), "pid": os.getpid(), "overrides": list(overrides),
            "solver": OmegaConf.select(sweep_config, "solver.name"),
            "dataset": OmegaConf.select(sweep_config, "dataset.name"),
            "seed": OmegaConf.select(sweep_config, "seed")}
    tmp = Path(markers, f".{idx}.json.{os.getpid()}")
    tmp.write_text(json.dumps(note, default=str))
    tmp.replace(Path(markers, f"{idx}.json"))  # readers never see half a note
    return idx, _core.execute_job(idx, overrides, hydra_context, config, task_function,
                                  singleton_state)


def _exit_codes(err: BaseException) -> str:
    found = re.search(r"exit codes of the workers are (\{[^}]*\})", str(err))
    return found.group(1) if found else type(err).__name__


def install() -> bool:
    """Make ``launcher=joblib`` use :func:`resilient_launch`; False without joblib's plugin."""
    try:
        from hydra_plugins.hydra_joblib_launcher import _core
    except ImportError:
        return False
    _core.launch = resilient_launch
    return True


def resilient_launch(launcher: Any, job_overrides: Sequence[Sequence[str]],
                     initial_job_idx: int) -> Sequence[JobReturn]:
    """Hydra's ``joblib`` launch, with a dead worker recorded as one failed job."""
    return _Launch(launcher).launch(job_overrides, initial_job_idx)


class _Launch:
    """One launch of a :class:`JoblibLauncher`'s jobs (its settings, config and task)."""

    def __init__(self, launcher: JoblibLauncher) -> None:
        self.joblib, self.config = launcher.joblib, launcher.config
        self.hydra_context, self.task_function = launcher.hydra_context, launcher.task_function

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        cfg = dict(self.joblib) | {"backend": "loky"}  # Hydra needs processes
        _core.process_joblib_cfg(cfg)
        log.info("Joblib.Parallel(%s) is launching %d jobs",
                 ",".join(f"{k}={v}" for k, v in cfg.items()), len(job_overrides))
        log.info("Launching jobs, sweep output dir : %s", sweep_dir)
        for idx, overrides in enumerate(job_overrides):
            log.info("\t#%d : %s", initial_job_idx + idx, " ".join(filter_overrides(overrides)))

        jobs = {initial_job_idx + i: list(o) for i, o in enumerate(job_overrides)}
        done: dict[int, JobReturn] = {}
        markers = str(sweep_dir / MARKERS)
        shutil.rmtree(markers, ignore_errors=True)
        os.makedirs(markers)
        try:
            pending, blind = list(jobs), 0
            while pending:
                try:
                    self._run(cfg, {i: jobs[i] for i in pending}, done, markers)
                    break
                except BrokenProcessPool as err:
                    lost = [i for i in pending if i not in done]
                    started = [i for i in lost if Path(markers, f"{i}.json").exists()]
                    blind = 0 if started else blind + 1
                    log.error("a joblib worker died (exit codes %s); re-running the %d job(s) "
                              "in flight one at a time to find which", _exit_codes(err),
                              len(started))
                    for i in started:
                        self._alone(cfg, i, jobs[i], done, markers)
                    pending = [i for i in lost if i not in done]
                    if blind >= MAX_BLIND_CRASHES:
                        for i in pending:
                            done[i] = _dead_job(i, jobs[i], markers, err, sweep_dir)
                        pending = []
        finally:
            shutil.rmtree(markers, ignore_errors=True)
        return [done[i] for i in jobs]

    def _run(self, cfg: dict[str, Any], jobs: dict[int, list[str]], done: dict[int, JobReturn],
             markers: str) -> None:
        """Run ``jobs`` in parallel, storing each return in ``done`` as soon as it arrives."""
        state = Singleton.get_state()
        parallel = Parallel(**cfg, return_as="generator_unordered")
        for idx, ret in parallel(
                delayed(_start)(idx, overrides, self.hydra_context, self.config,
                                self.task_function, state, markers)
                for idx, overrides in jobs.items()):
            done[idx] = ret

    def _alone(self, cfg: dict[str, Any], idx: int, overrides: list[str],
               done: dict[int, JobReturn], markers: str) -> None:
        try:
            self._run(cfg, {idx: overrides}, done, markers)
        except BrokenProcessPool as err:
            done[idx] = _dead_job(idx, overrides, markers, err,
                                  Path(str(self.config.hydra.sweep.dir)))


def _dead_job(idx: int, overrides: list[str], markers: str, err: BaseException,
              sweep_dir: Path) -> JobReturn:
    """Record job ``idx``, whose worker died, as a failed job in its folder."""
    from genbench.run.pipeline import write_result
    from genbench.sweep.lines import job_line

    marker = Path(markers, f"{idx}.json")
    note = json.loads(marker.read_text()) if marker.exists() else {}
    folder = Path(note.get("output_dir") or sweep_dir / f"job-{idx}")
    now = datetime.now(timezone.utc).isoformat()
    result = {"status": "failed", "error_type": "WorkerDied",
              "error": f"the worker process running this job died (exit codes "
                       f"{_exit_codes(err)}; -9 is SIGKILL, e.g. the out-of-memory killer), "
                       "also when run again alone",
              "solver": note.get("solver"), "dataset": note.get("dataset"),
              "seed": note.get("seed"), "overrides": overrides, "output_dir": str(folder),
              "started": now, "finished": now}
    result = write_result(result, folder)
    log.error(job_line(result, idx))
    ret = JobReturn(overrides=overrides, working_dir=str(folder), task_name="genbench",
                    status=JobStatus.COMPLETED)
    ret.return_value = result
    return ret
