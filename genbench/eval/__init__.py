"""The judge: metrics (genbench.eval.metrics), their sample-noise floors (floors) and the
harness that combines them (harness)."""

from genbench.eval.floors import cached_floor, floor_w2, w2_with_floor
from genbench.eval.harness import Evaluation, model_log_density

__all__ = ["Evaluation", "cached_floor", "floor_w2", "model_log_density", "w2_with_floor"]
