"""The SLURM launcher of ``launcher=slurm``: submitit's, plus a record of jobs SLURM ended.

A genbench job records its own failures (``results.json`` with ``"status": "failed"``), but
a job that SLURM ends from outside (``scancel``, its time limit, the node failing, out of
memory) is killed before it can write anything. Hydra's submitit launcher then raises on
that job's missing result and the whole sweep stops: the jobs after it are not collected
and no report is written. :class:`SlurmLauncher` keeps submitit's submission and, for each
job that ended without a result, writes a failed ``results.json`` into the job's folder
(``error_type`` from SLURM's state: ``SlurmCancelled``, ``SlurmTimeout``, ...; the tail of
its submitit log) unless the job had already written a successful one. The sweep then goes
on as with any failed job: the others are collected, the report lists it, and running the
sweep again re-runs it (resume).

The state comes from ``sacct`` (submitit's watcher), so the cluster needs job accounting
(any real cluster has it; ``scripts/slurm-local`` explains the single-node case).

Hydra only instantiates launchers from the ``hydra_plugins`` namespace, hence this package;
``configs/launcher/slurm.yaml`` selects it (``hydra.launcher._target_``). Without the submitit
plugin (``pip install 'genbench[slurm]'``) the class is no Hydra plugin and Hydra's own error
names the missing launcher.

References:
    Hydra submitit launcher plugin, https://hydra.cc/docs/plugins/submitit_launcher/;
    submitit, https://github.com/facebookincubator/submitit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

try:
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher
except ImportError:  # the optional extra genbench[slurm]: nothing to register
    submitit_launcher = None

__all__ = ["RegisterLauncher", "SlurmLauncher", "ended_job_result"]

log = logging.getLogger("genbench.sweep")
_LOG_LINES = 30  # lines of the job's stderr kept in its failed result


def _error_type(state: str) -> str:
    """``CANCELLED by 0`` -> ``SlurmCancelled``; ``OUT_OF_MEMORY`` -> ``SlurmOutOfMemory``."""
    word = (state.split() or ["UNKNOWN"])[0]
    return "Slurm" + "".join(part.capitalize() for part in word.split("_"))


def ended_job_result(config: Any, job_id: str, state: str, error: Exception,
                     log_tail: str) -> dict[str, Any]:
    """The failed result of a job SLURM ended before it wrote one (``config``: its sweep
    config, without the ``hydra`` node)."""
    plain = OmegaConf.to_container(config, resolve=True) if OmegaConf.is_config(config) \
        else dict(config)
    why = " ".join(str(error).split())[:300]  # submitit's message spans lines
    return {"solver": plain.get("solver", {}).get("name"),
            "dataset": plain.get("dataset", {}).get("name"), "seed": plain.get("seed"),
            "config": plain, "status": "failed", "error_type": _error_type(state),
            "error": f"SLURM job {job_id} ended {state} without writing a result "
                     f"({type(error).__name__}: {why})",
            "traceback": log_tail, "slurm_job_id": job_id, "slurm_state": state,
            "finished": datetime.now(timezone.utc).isoformat()}


class _Recorded:
    """A submitted job whose ``results()`` records its end instead of raising."""

    def __init__(self, job: Any, launcher: SlurmLauncher, overrides: Sequence[str],
                 number: int) -> None:
        self.job, self.launcher, self.overrides, self.number = job, launcher, overrides, number

    def results(self) -> list[JobReturn]:
        try:
            return self.job.results()
        except Exception as err:  # noqa: BLE001 - UncompletedJobError, FailedJobError, ...
            return [self.launcher.record_ended_job(self.job, self.overrides, self.number, err)]


_Base: Any = submitit_launcher.SlurmLauncher if submitit_launcher is not None else object


class SlurmLauncher(_Base):
    """submitit's SLURM launcher; a job SLURM ended is recorded as failed (see module)."""

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        original = submitit.AutoExecutor.map_array

        def map_array(executor: Any, fn: Any, *args: Any) -> list[_Recorded]:
            jobs = original(executor, fn, *args)
            overrides, numbers = args[0], args[2]  # the parent's job_params, unzipped
            return [_Recorded(j, self, o, n)
                    for j, o, n in zip(jobs, overrides, numbers, strict=True)]

        # The parent builds its executor inside launch(): wrap the one call that returns jobs.
        submitit.AutoExecutor.map_array = map_array
        try:
            return super().launch(job_overrides, initial_job_idx)
        finally:
            submitit.AutoExecutor.map_array = original

    def record_ended_job(self, job: Any, overrides: Sequence[str], number: int,
                         error: Exception) -> JobReturn:
        # genbench is imported here, not at Hydra's plugin scan
        from genbench.core.storage import atomic_json_dump, read_json
        from genbench.run.files import RESULTS_FILE
        from genbench.sweep.lines import job_line

        assert self.config is not None and self.hydra_context is not None
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config,
                                                                          list(overrides))
        previous_hydra = HydraConfig.instance().cfg
        HydraConfig.instance().set_config(sweep_config)  # resolves ${hydra:...} in subdir
        try:
            folder = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
        finally:
            if previous_hydra is not None:
                HydraConfig.instance().set_config(previous_hydra)
        path = folder / RESULTS_FILE
        result = read_json(path)
        if result is None or result.get("status") != "ok":
            state = str(job.state)
            task = {k: v for k, v in sweep_config.items() if k != "hydra"}
            result = ended_job_result(OmegaConf.create(task), str(job.job_id), state, error,
                                      _tail(job.paths.stderr)) | {"output_dir": str(folder)}
            atomic_json_dump(result, path)
        log.error(job_line(result, number))
        return JobReturn(overrides=list(overrides), cfg=sweep_config, status=JobStatus.COMPLETED,
                         _return_value=result, working_dir=str(folder))


def _tail(path: Path) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-_LOG_LINES:])
    except OSError:
        return ""


class RegisterLauncher(Callback):
    """Registers :class:`SlurmLauncher` with Hydra before the sweep starts.

    Hydra finds launchers by scanning the ``hydra_plugins`` namespace with :mod:`pkgutil`,
    which cannot see into an editable install (``pip install -e .``); callbacks are built
    before the launcher, so ``configs/launcher/slurm.yaml`` lists this one to register it.
    """

    def __init__(self) -> None:
        if submitit_launcher is not None:
            Plugins.instance().register(SlurmLauncher)
