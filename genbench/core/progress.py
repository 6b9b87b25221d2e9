"""Progress bars (tqdm) for the long phases of a job: training, sampling, solves, evaluation.

A bar is drawn only when progress is asked for *and* stderr is a terminal: tqdm's
``disable=None`` turns it off on a pipe, a file or a SLURM log, so logs never fill with
carriage returns. Training passes its flag explicitly; the inner loops of sampling (DDPM's
steps, ODE and SDE solves) and the harness read it from :func:`progress_scope`, which the
pipeline opens around sampling and scoring only, so the many solves inside training (JKO's
blocks, reflow) never draw bars.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from tqdm.auto import tqdm

__all__ = ["TimeBar", "bar", "progress_enabled", "progress_scope"]

_ENABLED: ContextVar[bool] = ContextVar("genbench_progress", default=False)


@contextmanager
def progress_scope(enabled: bool) -> Iterator[None]:
    """Within the block, :func:`bar` with ``enabled=None`` draws (on a terminal) iff ``enabled``."""
    token = _ENABLED.set(bool(enabled))
    try:
        yield
    finally:
        _ENABLED.reset(token)


def progress_enabled() -> bool:
    """Whether the innermost :func:`progress_scope` asked for bars."""
    return _ENABLED.get()


def bar(total: float | None = None, *, desc: str, enabled: bool | None = None,
        unit: str = "it", leave: bool = False, **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr; off unless asked (``enabled`` or the scope) and on a terminal."""
    on = progress_enabled() if enabled is None else enabled
    return tqdm(total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr,
                disable=None if on else True, dynamic_ncols=True, **kwargs)


class TimeBar:
    """A bar over the integration time of an ODE or SDE solve, ``t0 -> t1`` (either way).

    Solvers call :meth:`reach` with the time of each field evaluation; adaptive solvers
    evaluate out of order, so the bar shows the furthest time reached, in per mille.
    """

    RESOLUTION = 1000

    def __init__(self, t0: float, t1: float, *, desc: str):
        self.t0, self.span = float(t0), float(t1) - float(t0)
        self.bar = bar(self.RESOLUTION, desc=desc, unit="‰",
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
        self.calls = 0

    def reach(self, t: Any) -> None:
        self.calls += 1
        if self.bar.disable:
            return
        done = int(self.RESOLUTION * min(1.0, max(0.0, (float(t) - self.t0) / self.span)))
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def __enter__(self) -> TimeBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
