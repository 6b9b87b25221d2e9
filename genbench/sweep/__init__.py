"""Many jobs: the Hydra command line, the config groups registered from the dataclasses, its
sweep callback (launcher hints included) and the loading of a sweep's finished jobs."""

from __future__ import annotations

from genbench.core.lazy import lazy_exports

_EXPORTS = {
    "IDENTITY_KEYS": "genbench.sweep.jobs",
    "Job": "genbench.sweep.jobs",
    "as_number": "genbench.sweep.jobs",
    "load_jobs": "genbench.sweep.jobs",
    "LAUNCHER_PLUGINS": "genbench.sweep.callback",
    "SweepCallback": "genbench.sweep.callback",
    "job_line": "genbench.sweep.lines",
    "missing_launcher_hint": "genbench.sweep.callback",
    "sweep_id": "genbench.sweep.callback",
    "CONFIG_PATH": "genbench.sweep.schemas",
    "check_overrides": "genbench.sweep.schemas",
    "register_schemas": "genbench.sweep.schemas",
    "format_result": "genbench.sweep.cli",
    "main": "genbench.sweep.cli",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
