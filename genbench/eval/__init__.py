"""The judge: metrics, their sample-noise floors and the harness that combines them."""

from genbench.eval.harness import Evaluation, cached_floor, floor_w2, w2_with_floor

__all__ = [
    "Evaluation",
    "cached_floor",
    "floor_w2",
    "w2_with_floor",
]
