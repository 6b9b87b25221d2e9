"""Equal budgets: ``budget.train_steps`` and ``budget.nfe`` mapped onto each solver's keys.

Solvers count cost in their own units: ``steps`` is per block for jko, NFE is set by
``sample_steps`` for ddpm, by ``sde_steps`` for lsb and by ``sample_steps`` times the calls
per step of a fixed-step integrator for pfode and cfm. A :class:`BudgetConfig` states the cost
once, in shared units:

- ``train_steps``: gradient steps of the whole training run (every block, every reflow round);
- ``nfe``: network evaluations to draw one batch of samples (an upper bound where the solver
  may stop early, e.g. jko's blocks).

Each solver declares the mapping itself (:meth:`genbench.core.solver.Solver.apply_budget`,
returning config overrides); the base class maps ``train_steps`` onto ``steps`` and has no
NFE mapping, so a solver that cannot honour an NFE budget fails its own job with
:class:`BudgetError` (never the sweep). The job records the budget and the overrides in
``results.json`` (``budget``), and the measured ``train_steps`` and ``nfe`` in its metrics;
the leaderboard flags data sets whose rows were compared at unequal budgets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genbench.core.errors import ConfigError

__all__ = ["FIXED_STEP_CALLS", "BudgetConfig", "BudgetError", "fixed_step_budget",
           "split_evenly"]

# Network calls per step of the fixed-step ODE integrators (torchdiffeq): Euler 1, the
# midpoint rule 2, the classical Runge-Kutta (3/8 rule) 4.
FIXED_STEP_CALLS = {"euler": 1, "midpoint": 2, "rk4": 4}


class BudgetError(ConfigError):
    """A budget that a solver cannot honour (raised when its job starts, before any work)."""


@dataclass
class BudgetConfig:
    """The shared cost of every job (option-free root group ``budget``); None: each solver's own
    defaults."""

    train_steps: int | None = None  # gradient steps of the whole training run
    nfe: int | None = None  # network evaluations per sampling run (an upper bound)
    # the ODE integrator used when a solver's configured one is adaptive (an adaptive
    # method's NFE cannot be fixed in advance): euler | midpoint | rk4
    ode_method: str = "euler"

    def __post_init__(self) -> None:
        for key in ("train_steps", "nfe"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ValueError(f"budget.{key} must be >= 1 or null, got {value}")
        if self.ode_method not in FIXED_STEP_CALLS:
            raise ValueError(f"budget.ode_method must be one of {', '.join(FIXED_STEP_CALLS)}, "
                             f"got {self.ode_method!r}")

    @property
    def is_set(self) -> bool:
        return self.train_steps is not None or self.nfe is not None


def fixed_step_budget(nfe: int, method: str, *, default_method: str, repeats: int = 1,
                      what: str) -> tuple[str, int]:
    """``(method, steps)`` of a fixed-step integrator spending at most ``nfe`` calls over
    ``repeats`` integrations; an adaptive ``method`` is replaced by ``default_method``."""
    if method not in FIXED_STEP_CALLS:
        method = default_method
    per_step = FIXED_STEP_CALLS[method] * repeats
    steps = nfe // per_step
    if steps < 1:
        raise BudgetError(f"{what}: budget.nfe={nfe} is below one step of {method} "
                          f"({per_step} network calls); raise budget.nfe to >= {per_step}")
    return method, steps


def split_evenly(total: int, parts: int, *, what: str) -> int:
    """Steps per part when ``total`` training steps are spread over ``parts`` equal parts."""
    if total < parts:
        raise BudgetError(f"{what}: budget.train_steps={total} is fewer than its {parts} "
                          f"training stages; raise budget.train_steps to >= {parts}")
    return total // parts


def describe(overrides: dict[str, Any]) -> str:
    """``key=value`` list of the overrides a budget made (for logs)."""
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "nothing"
