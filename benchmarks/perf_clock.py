"""Wall and CPU clocks for the performance benchmark, and a description of the machine.

Timings on a shared machine are inflated by contention: the wall clock counts the time the
process waited for a core, the CPU clock (``time.process_time``, all threads of this process)
does not. With ``torch.set_num_threads(1)`` the CPU time is close to the work done, so the
benchmark compares ratios of CPU times and reports the wall times beside them.

References:
    Python documentation, ``time.process_time`` and ``time.perf_counter``.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Clock", "machine_info", "ratio"]


@dataclass
class Clock:
    """``with Clock() as c: ...`` then ``c.wall`` and ``c.cpu`` in seconds."""

    wall: float = 0.0
    cpu: float = 0.0

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or None when either is missing or ``b`` is zero."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def machine_info() -> dict[str, Any]:
    """CPU count, load average, library versions and thread settings of this run."""
    import torch

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cuda": torch.cuda.is_available(),
    }
    try:
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        info["load_average"] = None
    for package in ("torchcfm", "ot", "torchdiffeq", "torchsde"):
        try:
            info[package] = __import__(package).__version__
        except Exception:  # not installed, or no version attribute
            info[package] = None
    return info
