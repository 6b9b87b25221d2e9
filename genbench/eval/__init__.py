"""The judge: metrics (genbench.eval.metrics), their sample-noise floors (floors) and the
harness that combines them (harness).

The names below load on first use, so ``genbench.eval.stats`` (numpy and scipy only) can be
imported by the report without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Evaluation", "cached_floor", "floor_w2", "model_log_density", "w2_with_floor"]

_HOME = {"Evaluation": "harness", "model_log_density": "harness", "cached_floor": "floors",
         "floor_w2": "floors", "w2_with_floor": "floors"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"genbench.eval.{_HOME[name]}"), name)
    raise AttributeError(f"module 'genbench.eval' has no attribute {name!r}")
