"""The floor's reference draws: ``R`` exact target samples scored like a job, once per data set.

Each draw is a fresh sample of ``n_test`` points from the target (or a resplit of a finite
set's non-test points, :func:`reference_draws`) scored against the test points by
:func:`sample_scores`, exactly as a job's sample is. The draws are cached on disk
(``cache_dir/floors/draws-*.json``) by the content of the test, reference (and, for finite
sets, training) points and the estimators' settings, so only the first job on a data set pays
for them; what that first job pays is kept down four ways:

* **once per test set, not per draw**: the test points' own terms (their k-NN radii for
  precision/recall/density/coverage, their kernel sum for MMD^2, the latent test points'
  bandwidth and kernel sum) are computed once (:class:`HeldOut`), not ``R`` times;
* **fewer draws where only a mean +- sd is read**: the latent W2 and MMD floors enter no
  rank test, only the ratio's mean and prediction interval, so they get ``SD_DRAWS`` (20)
  draws; every score of the rank verdict gets all ``R`` (its exactness needs all draws of
  every score). A codec whose encoding of the test points *is* the test points (no
  standardising) gets no latent draws at all: the data draws are the latent ones;
* **in parallel**: the draws are scored on ``eval.floor_workers`` threads (0: every core this
  process may use). POT's network simplex and torch's kernels release the GIL; each draw runs
  single-threaded (torch and BLAS limited to one thread while the pool runs), so its numbers
  do not depend on the number of workers;
* **once per cache**: parallel jobs that need the same draws serialise on a lock beside the
  entry (:func:`genbench.eval.floors.cached_floor`): the first computes, the others wait and
  read its result.

Measured: benchmarks/results/verdicts.md ("Cost of the floor draws").
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from genbench.core.config import EvalConfig
from genbench.core.progress import bar
from genbench.eval.floors import cached_floor, w2_settings
from genbench.eval.metrics.likelihood import cross_entropy
from genbench.eval.metrics.mmd import median_bandwidth
from genbench.eval.metrics.modes import mode_report
from genbench.eval.metrics.prdc import knn_radii, prdc
from genbench.eval.metrics.w2 import w2

if TYPE_CHECKING:
    from genbench.data import DataSplits

__all__ = ["SD_DRAWS", "HeldOut", "floor_draws", "floor_workers", "held_out", "mmd2_both",
           "reference_draws", "sample_scores"]

log = logging.getLogger(__name__)

# Draws behind the scores that only need a mean +- sd (the latent W2 and MMD ratios): the
# prediction interval's t quantile is 2.09 at 19 degrees of freedom against 2.01 at 48, and
# the sd is estimated to about 1 / sqrt(2 * 19) = 16 %.
SD_DRAWS = 20


def _seed_of(test: Tensor) -> int:
    """A seed tied to the test points, so the draws are the same wherever they are made."""
    digest = hashlib.sha256(np.ascontiguousarray(test.detach().cpu().numpy()).tobytes())
    return int.from_bytes(digest.digest()[:8], "little")


def reference_draws(splits: DataSplits, n_draws: int) -> Iterator[Tensor]:
    """``n_draws`` independent reference samples of ``n_test`` points (the first: the split's).

    Fresh target draws where the data set has a sampler; resplits of the finite set's non-test
    points (reference and training, without replacement) otherwise.
    """
    n = len(splits.test)
    seed = _seed_of(splits.test)
    pool = None if splits.sampler is not None else torch.cat([splits.reference, splits.train])
    yield splits.reference
    for r in range(1, n_draws):
        rng = np.random.default_rng([seed, 7, r])
        if pool is None:
            yield torch.as_tensor(splits.sampler(n, rng), dtype=torch.float32)
        else:
            yield pool[torch.as_tensor(rng.choice(len(pool), n, replace=False))]


def _subsample(x: Tensor, max_n: int, seed: int) -> Tensor:
    if len(x) <= max_n:
        return x
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_n]]


def _kernel_sum(x: Tensor, y: Tensor, gamma: float) -> float:
    return float(torch.exp(-gamma * torch.cdist(x, y).pow(2)).sum())


@dataclass(frozen=True)
class HeldOut:
    """The test points (float64, CPU) and their own terms, shared by every scored sample.

    ``mmd_points``: the (subsampled) points of the MMD, with ``kernel_sum`` = ``sum_{i,j}
    k(t_i, t_j)`` over them; ``radii``: each test point's k-NN radius (None: too few points).
    """

    points: Tensor
    mmd_points: Tensor
    bandwidth: float
    kernel_sum: float
    radii: Tensor | None


def held_out(test: Tensor, cfg: EvalConfig, bandwidth: float | None = None,
              *, knn: bool = True) -> HeldOut:
    """The :class:`HeldOut` of ``test``; ``bandwidth`` None: the median rule on ``test``."""
    points = test.detach().cpu().double()
    if bandwidth is None:
        bandwidth = median_bandwidth(points, seed=cfg.seed)
    sub = _subsample(points, cfg.mmd_max_n, cfg.seed)
    radii = knn_radii(points, cfg.prdc_k) if knn and len(points) > cfg.prdc_k else None
    return HeldOut(points, sub, bandwidth, _kernel_sum(sub, sub, 1.0 / (2.0 * bandwidth**2)),
                    radii)


def mmd2_both(x: Tensor, side: HeldOut) -> tuple[float, float]:
    """Unbiased (U) and plug-in (V) MMD^2 of ``x`` against the test side, from one set of
    kernel sums (Gretton et al., JMLR 2012, eq. 3 and eq. 5); the kernel's diagonal is 1,
    which the U-statistic leaves out. ``x`` is subsampled to ``mmd_max_n`` like the test."""
    gamma = 1.0 / (2.0 * side.bandwidth**2)
    y = side.mmd_points
    sxx, syy, sxy = _kernel_sum(x, x, gamma), side.kernel_sum, _kernel_sum(x, y, gamma)
    n, m = len(x), len(y)
    u = (sxx - n) / (n * (n - 1)) + (syy - m) / (m * (m - 1)) - 2 * sxy / (n * m)
    v = sxx / n**2 + syy / m**2 - 2 * sxy / (n * m)
    return u, v


def sample_scores(x: Tensor, side: HeldOut, splits: DataSplits, cfg: EvalConfig,
                  *, w2_value: float | None = None
                  ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The verdict's scores of sample ``x`` against the test side, and per-point terms
    (for the bootstrap)."""
    x, test = x.detach().cpu().double(), side.points
    out: dict[str, float] = {}
    per_point: dict[str, np.ndarray] = {}
    out["data_w2"] = w2_value if w2_value is not None else w2(x, test, **w2_settings(cfg))[0]
    u, v = mmd2_both(_subsample(x, cfg.mmd_max_n, cfg.seed), side)
    out["data_mmd2"], out["data_mmd"] = u, math.sqrt(max(v, 0.0))
    if side.radii is not None and len(x) > cfg.prdc_k:
        pr = prdc(x, test, k=cfg.prdc_k, real_radii=side.radii)
        for name, value in pr.scores().items():
            out[f"data_{name}"] = value
            per_point[f"data_{name}"] = pr.per_point[name]
    if splits.log_prob is not None:
        ce = cross_entropy(x, splits.log_prob)
        out["cross_entropy"] = ce.value
        per_point["cross_entropy"] = ce.per_point
    if splits.mixture is not None:
        mix = splits.mixture
        modes = mode_report(x, mix.means, mix.std, mix.weights)
        out |= {"mode_weight_error": modes.weight_error, "modes_found": float(modes.modes_found),
                "n_modes": float(modes.n_modes)}
    return out, per_point


def floor_workers(cfg: EvalConfig) -> int:
    """Threads for the floor draws: ``eval.floor_workers``, or every usable core when 0."""
    if cfg.floor_workers:
        return cfg.floor_workers
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


def _run(score: Callable[[int], dict[str, float]], n: int, workers: int) -> list[dict[str, float]]:
    """``[score(0), ..., score(n - 1)]`` on ``workers`` threads, each call single-threaded."""
    rows: list[dict[str, float] | None] = [None] * n
    progress = bar(n, desc="floor draws", unit="draw")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread per draw: the same numbers at any worker count
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        with threadpool_limits(limits=1):
            futures = {pool.submit(score, i): i for i in range(n)}
            for future in as_completed(futures):
                rows[futures[future]] = future.result()
                progress.update(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a failed draw stops the rest
        torch.set_num_threads(threads)
        progress.close()
    return [row for row in rows if row is not None]


def floor_draws(splits: DataSplits, cfg: EvalConfig, side: HeldOut,
                cache_dir: str | Path | None,
                latent: tuple[Callable[[Tensor], Tensor], Tensor] | None = None
                ) -> dict[str, list[float]]:
    """Every score of ``R = floor_draws`` reference draws against the test points, cached by
    content; with ``latent = (encode, z_test)`` also ``latent_w2`` and ``latent_mmd`` (the
    harness's V-statistic MMD) of the first ``min(R, SD_DRAWS)`` draws' encodings."""
    n_draws = cfg.floor_draws
    n_latent = 0 if latent is None else min(n_draws, SD_DRAWS)
    finite = splits.sampler is None
    reference = torch.cat([splits.reference, splits.train]) if finite else splits.reference
    settings = {"draws": n_draws, "k": cfg.prdc_k, "bandwidth": side.bandwidth,
                "mmd_max_n": cfg.mmd_max_n, "finite": finite,
                "latent": None if latent is None else ["w2", "mmd"], "latent_draws": n_latent,
                "log_prob": splits.log_prob is not None, "mixture": splits.mixture is not None,
                **w2_settings(cfg)}

    def compute() -> dict[str, Any]:
        workers = min(floor_workers(cfg), n_draws)
        log.info("computing %d floor draws on %d thread(s) (once per data set; cached)",
                 n_draws, workers)
        refs = list(reference_draws(splits, n_draws))
        z_side, z_refs = None, []
        if latent is not None:
            encode, z_test = latent
            z_side = held_out(z_test, cfg, knn=False)
            with torch.no_grad():  # encoded here, once, not in the worker threads
                z_refs = [encode(r.to(z_test.device)).detach().cpu().double()
                          for r in refs[:n_latent]]

        def score(i: int) -> dict[str, float]:
            row, _ = sample_scores(refs[i], side, splits, cfg)
            if i < len(z_refs) and z_side is not None:
                row["latent_w2"] = w2(z_refs[i], z_side.points, **w2_settings(cfg))[0]
                _, v = mmd2_both(_subsample(z_refs[i], cfg.mmd_max_n, cfg.seed), z_side)
                row["latent_mmd"] = math.sqrt(max(v, 0.0))
            return row

        rows = _run(score, n_draws, workers)
        keys = dict.fromkeys(k for row in rows for k in row)
        return {k: [row[k] for row in rows if k in row] for k in keys}

    # The latent draws depend on the codec: its encoding of the test points joins the key.
    key_ref = reference if latent is None else torch.cat(
        [reference.flatten(), latent[1].detach().cpu().flatten()])[:, None]
    return cached_floor("draws", compute, splits.test, key_ref, settings, cache_dir)
