"""Distances between samples: W2 (exact, Sinkhorn, sliced) and friends."""

from genbench.metrics.w2 import w2, w2_gaussian

__all__ = ["w2", "w2_gaussian"]
