"""Distances between samples: W2 (exact, Sinkhorn, sliced), W1 (exact, sliced), TV (three
estimators), MMD."""

from genbench.eval.metrics.mmd import median_bandwidth, mmd
from genbench.eval.metrics.tv import TV_METHODS, TVResult, tv
from genbench.eval.metrics.w1 import W1_METHODS, w1
from genbench.eval.metrics.w2 import W2_METHODS, sliced_w2, w2, w2_gaussian

__all__ = ["TV_METHODS", "W1_METHODS", "W2_METHODS", "TVResult", "median_bandwidth", "mmd",
           "sliced_w2", "tv", "w1", "w2", "w2_gaussian"]
