"""Old import path of the solver registry, kept for plugins: see :mod:`genbench.core.solver`
(the solver registry) and :mod:`genbench.core.registry` (the mechanism)."""

from genbench.core.registry import Registry
from genbench.core.solver import (
    ENTRY_POINT_GROUP,
    SOLVERS,
    UnknownSolverError,
    create_solver,
    get_solver_class,
    list_solvers,
    register_solver,
    reload_plugins,
)

__all__ = [
    "ENTRY_POINT_GROUP", "SOLVERS", "Registry", "UnknownSolverError", "create_solver",
    "get_solver_class", "list_solvers", "register_solver", "reload_plugins",
]
