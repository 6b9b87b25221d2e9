"""One job: fit or load the encoder-decoder, train the solver, sample, score, write results
(pipeline, scoring), atomically (storage), tracked (tracking), with its checkpoint
(checkpoint); re-score a job (rescore) or samples made elsewhere (external)."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MODEL_FILE": "genbench.run.files",
    "RESULTS_FILE": "genbench.run.files",
    "SAMPLES_FILE": "genbench.run.files",
    "resolve_device": "genbench.run.pipeline",
    "run": "genbench.run.pipeline",
    "LOGGERS": "genbench.run.tracking",
    "SWEEP_ID_ENV": "genbench.run.tracking",
    "NullTracker": "genbench.run.tracking",
    "Tracker": "genbench.run.tracking",
    "WandbTracker": "genbench.run.tracking",
    "log_sweep": "genbench.run.tracking",
    "make_tracker": "genbench.run.tracking",
    "run_name": "genbench.run.tracking",
    "rescore": "genbench.run.rescore",
    "score_external": "genbench.run.external",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy re-exports (PEP 562): importing one light module of this package (for example
    # from the report) does not load torch through its siblings.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
