"""One job: fit or load the encoder-decoder, train the solver, sample, score, write results
(pipeline, scoring), atomically (storage), tracked (tracking), with its checkpoint
(checkpoint); re-score a job (rescore) or samples made elsewhere (external)."""

from __future__ import annotations

from genbench.core.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
