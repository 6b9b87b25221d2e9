"""The contract and the machinery every part shares: the Solver base class, the registry,
the training loop, errors and config validation."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConfigError": "genbench.core.config",
    "EvalConfig": "genbench.core.config",
    "LoggerConfig": "genbench.core.config",
    "RESULT_NEUTRAL_KEYS": "genbench.core.config",
    "RunConfig": "genbench.core.config",
    "is_result_neutral": "genbench.core.config",
    "validate": "genbench.core.config",
    "CapabilityError": "genbench.core.solver",
    "DataError": "genbench.core.solver",
    "DivergenceError": "genbench.core.solver",
    "Solver": "genbench.core.solver",
    "SolverConfig": "genbench.core.solver",
    "TrainCallback": "genbench.core.solver",
    "ENTRY_POINT_GROUP": "genbench.core.registry",
    "UnknownSolverError": "genbench.core.registry",
    "create_solver": "genbench.core.registry",
    "get_solver_class": "genbench.core.registry",
    "list_solvers": "genbench.core.registry",
    "register_solver": "genbench.core.registry",
    "EMA": "genbench.core.training",
    "make_ema": "genbench.core.training",
    "make_optimizer": "genbench.core.training",
    "train": "genbench.core.training",
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
