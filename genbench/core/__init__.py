"""The contract and the machinery every part shares: the Solver base class and its registry
(solver), a loss in regression form (regression), the generic Registry (registry), the
training loop (training), errors, config validation (config) and atomic file writes
(storage)."""

from __future__ import annotations

from genbench.core.lazy import lazy_exports

_EXPORTS = {
    "CapabilityError": "genbench.core.errors",
    "ConfigError": "genbench.core.errors",
    "DataError": "genbench.core.errors",
    "DivergenceError": "genbench.core.errors",
    "UnknownNameError": "genbench.core.errors",
    "EvalConfig": "genbench.core.config",
    "LoggerConfig": "genbench.core.config",
    "RESULT_NEUTRAL_KEYS": "genbench.core.config",
    "RunConfig": "genbench.core.config",
    "is_result_neutral": "genbench.core.config",
    "validate": "genbench.core.config",
    "Registry": "genbench.core.registry",
    "Regression": "genbench.core.regression",
    "ENTRY_POINT_GROUP": "genbench.core.solver",
    "SOLVERS": "genbench.core.solver",
    "Solver": "genbench.core.solver",
    "SolverConfig": "genbench.core.solver",
    "TrainCallback": "genbench.core.solver",
    "UnknownSolverError": "genbench.core.solver",
    "create_solver": "genbench.core.solver",
    "get_solver_class": "genbench.core.solver",
    "list_solvers": "genbench.core.solver",
    "register_solver": "genbench.core.solver",
    "reload_plugins": "genbench.core.solver",
    "EMA": "genbench.core.training",
    "make_ema": "genbench.core.training",
    "make_optimizer": "genbench.core.training",
    "train": "genbench.core.training",
    "atomic_csv_write": "genbench.core.storage",
    "atomic_json_dump": "genbench.core.storage",
    "atomic_npz_save": "genbench.core.storage",
    "atomic_write": "genbench.core.storage",
    "read_json": "genbench.core.storage",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
