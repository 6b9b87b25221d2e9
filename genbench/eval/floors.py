"""Sample-noise floors: each distance between the test points and an independent reference
sample of the same size from the target, cached on disk (``cache_dir/floors``) by the content
of the two samples and the estimator's settings, since they depend only on the target.

A distance is reported beside its floor as ``ratio = value / floor`` (1: indistinguishable
from the target at this sample size).

References:
    Fournier, Guillin, PTRF 2015 (the sample-noise floor of plug-in W2).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from genbench.core.config import EvalConfig
from genbench.core.storage import atomic_json_dump, exclusive_lock, read_json
from genbench.eval.metrics.mmd import median_bandwidth, mmd
from genbench.eval.metrics.tv import TVResult, tv
from genbench.eval.metrics.w1 import w1
from genbench.eval.metrics.w2 import w2

__all__ = [
    "FLOOR_CACHE_VERSION", "cached_floor", "floor_w2", "mmd_with_floor", "ratio", "tv_settings",
    "tv_with_floor", "w1_settings", "w1_with_floor", "w2_settings", "w2_with_floor",
]

log = logging.getLogger(__name__)

# Part of every floor's cache key: bump it when an estimator changes, so stale floors are
# recomputed rather than silently reused.
FLOOR_CACHE_VERSION = 1


def _fingerprint(*arrays: Tensor, extra: dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a.detach().cpu().numpy()).tobytes())
    return h.hexdigest()[:20]


def cached_floor(kind: str, compute: Callable[[], dict[str, Any]], test: Tensor,
                 reference: Tensor, settings: dict[str, Any],
                 cache_dir: str | Path | None) -> dict[str, Any]:
    """``compute()`` (a floor: a distance between two target samples), cached by content.

    Jobs that need the same entry at once (a sweep started on a cold cache) serialise on an
    exclusive lock beside it (:func:`~genbench.core.storage.exclusive_lock`): the first
    computes and writes, the others wait, then read what it wrote.
    """
    if cache_dir is None:
        return compute()
    key = _fingerprint(test, reference,
                       extra={"kind": kind, "version": FLOOR_CACHE_VERSION, **settings})
    path = Path(cache_dir).expanduser() / "floors" / f"{kind}-{key}.json"
    cached = read_json(path)
    if cached is not None:
        return cached
    with exclusive_lock(path) as lock_error:
        if lock_error is not None:  # a read-only or full cache folder: the floor is still right
            log.warning("floor cache not writable (%s: %s); continuing uncached",
                        type(lock_error).__name__, lock_error)
            return compute()
        cached = read_json(path)  # written by the job that held the lock before us
        if cached is not None:
            return cached
        value = compute()
        try:
            atomic_json_dump(value, path)
        except OSError as err:
            log.warning("floor cache not writable (%s: %s); continuing uncached",
                        type(err).__name__, err)
        return value


def w2_settings(cfg: EvalConfig) -> dict[str, Any]:
    """The W2 estimator's keyword arguments from the evaluation config."""
    return {"max_exact": cfg.max_exact, "large_n_method": cfg.large_n_method,
            "reg": cfg.sinkhorn_reg, "n_projections": cfg.sliced_projections, "seed": cfg.seed}


def w1_settings(cfg: EvalConfig) -> dict[str, Any]:
    """The W1 estimator's keyword arguments (exact up to ``max_exact``, sliced beyond)."""
    return {"max_exact": cfg.max_exact, "n_projections": cfg.sliced_projections,
            "seed": cfg.seed}


def tv_settings(cfg: EvalConfig) -> dict[str, Any]:
    """The TV estimator's keyword arguments from the evaluation config."""
    return {"method": cfg.tv_method, "max_hist_dim": cfg.tv_histogram_max_dim,
            "bins": cfg.tv_bins, "classifier_max_n": cfg.tv_classifier_max_n,
            "confidence": cfg.confidence, "seed": cfg.seed}


def ratio(value: float, floor: float) -> float:
    """``value / floor``; NaN when the floor is zero."""
    return value / floor if floor > 0 else float("nan")


def floor_w2(test: Tensor, reference: Tensor, cfg: EvalConfig,
             cache_dir: str | Path | None = None) -> float:
    """W2 between two independent target samples; cached on disk by their content."""
    def compute() -> dict[str, Any]:
        value, method = w2(test, reference, **w2_settings(cfg))
        return {"w2": value, "method": method, "n": len(test)}

    return float(cached_floor("w2", compute, test, reference, w2_settings(cfg), cache_dir)["w2"])


def w2_with_floor(gen: Tensor, test: Tensor, reference: Tensor, cfg: EvalConfig,
                  prefix: str, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """``{prefix}_w2``, ``_floor``, ``_ratio`` and ``_method`` for generated vs test points."""
    value, method = w2(gen, test, **w2_settings(cfg))
    floor = floor_w2(test, reference, cfg, cache_dir)
    return {f"{prefix}_w2": value, f"{prefix}_w2_floor": floor,
            f"{prefix}_w2_ratio": ratio(value, floor), f"{prefix}_w2_method": method}


def w1_with_floor(gen: Tensor, test: Tensor, reference: Tensor, cfg: EvalConfig,
                  prefix: str, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """``{prefix}_w1``, ``_floor``, ``_ratio`` and ``_method``: W1 (Euclidean cost) as for W2."""
    value, method = w1(gen, test, **w1_settings(cfg))

    def compute() -> dict[str, Any]:
        floor, floor_method = w1(test, reference, **w1_settings(cfg))
        return {"w1": floor, "method": floor_method, "n": len(test)}

    floor = float(cached_floor("w1", compute, test, reference, w1_settings(cfg),
                               cache_dir)["w1"])
    return {f"{prefix}_w1": value, f"{prefix}_w1_floor": floor,
            f"{prefix}_w1_ratio": ratio(value, floor), f"{prefix}_w1_method": method}


def _tv_entry(result: TVResult) -> dict[str, Any]:
    return {"value": result.value, "method": result.method,
            "ci": list(result.ci) if result.ci is not None else None}


def tv_with_floor(gen: Tensor, test: Tensor, reference: Tensor, cfg: EvalConfig, prefix: str,
                  cache_dir: str | Path | None = None) -> dict[str, Any]:
    """``{prefix}_tv``, ``_floor``, ``_method``, ``_ci``: the sample-based TV and its floor."""
    result = tv(gen, test, **tv_settings(cfg))
    floor = cached_floor("tv", lambda: _tv_entry(tv(reference, test, **tv_settings(cfg))),
                         test, reference, tv_settings(cfg), cache_dir)
    return {f"{prefix}_tv": result.value, f"{prefix}_tv_floor": floor["value"],
            f"{prefix}_tv_method": result.method,
            f"{prefix}_tv_ci": list(result.ci) if result.ci is not None else None}


def mmd_with_floor(gen: Tensor, test: Tensor, reference: Tensor, cfg: EvalConfig, prefix: str,
                   cache_dir: str | Path | None = None) -> dict[str, Any]:
    """``{prefix}_mmd``, ``_floor``, ``_ratio``, ``_bandwidth`` (median rule on the test set)."""
    bandwidth = median_bandwidth(test, seed=cfg.seed)
    kwargs = {"bandwidth": bandwidth, "max_n": cfg.mmd_max_n, "seed": cfg.seed}
    value, _ = mmd(gen, test, **kwargs)
    floor = cached_floor("mmd", lambda: {"value": mmd(reference, test, **kwargs)[0]},
                         test, reference, kwargs, cache_dir)["value"]
    return {f"{prefix}_mmd": value, f"{prefix}_mmd_floor": floor,
            f"{prefix}_mmd_ratio": ratio(value, floor), f"{prefix}_mmd_bandwidth": bandwidth}
