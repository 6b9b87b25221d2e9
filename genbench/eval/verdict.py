"""Every headline score with its uncertainty, and a calibrated "worse than the reference?".

The floor of a score is no longer one reference draw but ``R = floor_draws`` independent
ones, each scored against the same test points exactly as a job is: fresh draws from the
target where it can be sampled, *resplits* (draws without replacement from the reference and
training points) where the data set is finite. The ``R`` draws are made, scored in parallel
and cached once per data set, not once per job, by :mod:`genbench.eval.draws`.

Per job (data space unless said otherwise):

* ``data_w2_floor`` (mean over draws), ``_floor_sd``, ``_floor_n``; ``data_w2_ratio`` =
  W2 / floor mean with ``data_w2_ratio_low`` / ``_high`` (:func:`~genbench.eval.stats.
  floor_ratio_interval`: the draws' sd taken as the job's own, *an approximation*); the same
  for ``latent_w2`` and ``latent_mmd`` (over ``SD_DRAWS`` = 20 draws: they only need a mean
  and sd) and for the V-statistic ``data_mmd``.
* ``data_mmd2`` (unbiased MMD^2, median bandwidth), ``data_precision``, ``_recall``,
  ``_density``, ``_coverage`` (k-NN, :mod:`genbench.eval.metrics.prdc`), ``cross_entropy``
  ``E_q[-log p]`` beside ``target_entropy`` (its floor mean, a Monte-Carlo ``H(p)``) where the
  density is known, ``mode_weight_error``, ``modes_found`` / ``n_modes`` for mixtures; each
  with ``_low`` / ``_high`` (bootstrap over points for means over points, the floor-draw
  interval otherwise), ``_floor`` (mean), ``_floor_sd`` and ``_p`` (the one-sided prediction
  p-value that the job is worse than an exact draw, :func:`~genbench.eval.stats.
  worse_than_reference_p`, a normal approximation, reported, not the verdict).
* ``worse_than_reference_p``: the distribution-free rank test of ``min_k p_k`` over the tested
  scores (:func:`~genbench.eval.stats.combined_rank_p`, Barnard 1963; Hope 1968): exact at
  level ``j / (R + 1)`` given the test set, whatever the scores' law; ``worse_than_reference``
  is ``p <= verdict_alpha`` (R = 49 and 0.02: only the most extreme rank rejects).
* ``headline``: the name of the score that heads the leaderboard for this kind of data set
  (benchmarks/results/power.md, "Decision"): ``data_mmd2`` in <= 2-D, ``data_w2_ratio``
  above; ``headline_value``, ``_low``, ``_high``, ``headline_reference`` (what an exact draw
  scores: 1 for a ratio, the floor mean for MMD^2) and ``headline_noise_sd`` (the draws' sd in
  the headline's units, used by the leaderboard's paired test).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from genbench.core.config import EvalConfig
from genbench.eval.draws import floor_draws, held_out, reference_draws, sample_scores
from genbench.eval.metrics.mmd import median_bandwidth
from genbench.eval.metrics.mmd_test import mmd_test
from genbench.eval.stats import (
    bootstrap_mean_interval,
    combined_rank_p,
    draw_interval,
    floor_ratio_interval,
    floor_summary,
    worse_than_reference_p,
)

if TYPE_CHECKING:
    from genbench.data import DataSplits

__all__ = ["HEADLINES", "TESTED", "describe", "headline_for", "reference_draws", "sample_scores",
           "verdict"]

log = logging.getLogger(__name__)

# Scores in the verdict: result key -> (larger is worse, variance-stabilising transform).
TESTED = {"data_w2": (True, "log"), "data_mmd2": (True, "identity"),
          "data_precision": (False, "logit"), "data_recall": (False, "logit"),
          "data_coverage": (False, "logit"), "cross_entropy": (True, "identity"),
          "mode_weight_error": (True, "log")}
# Means over points: their interval is the bootstrap over points (genbench.eval.stats).
MEAN_TYPE = ("data_precision", "data_recall", "data_density", "data_coverage", "cross_entropy")
HEADLINES = ("w2_ratio", "mmd2")


def headline_for(dim: int, cfg: EvalConfig) -> str:
    """The leaderboard's headline key: MMD^2 in <= 2-D, W2/floor above (power.md)."""
    choice = cfg.headline if cfg.headline != "auto" else ("mmd2" if dim <= 2 else "w2_ratio")
    return "data_mmd2" if choice == "mmd2" else "data_w2_ratio"


def _worse_p(job: dict[str, float], draws: dict[str, list[float]]) -> tuple[float, list[str]]:
    """The rank test's p over the tested scores both the job and the draws have."""
    names = [k for k in TESTED if k in job and k in draws and math.isfinite(
        np.sum(draws[k])) and not math.isnan(job[k])]
    if any(math.isinf(job[k]) for k in names):  # -log p = inf: outside the target's support
        return 1.0 / (len(draws[names[0]]) + 1), names
    floors = np.column_stack([draws[k] for k in names])
    transforms = [TESTED[k][1] if TESTED[k][1] != "log" or np.all(floors[:, i] > 0)
                  else "identity" for i, k in enumerate(names)]
    p = combined_rank_p([job[k] for k in names], floors,
                        larger_is_worse=[TESTED[k][0] for k in names], transforms=transforms)
    return p, names


def _ratio_keys(key: str, value: float, draws: list[float], confidence: float
                ) -> dict[str, Any]:
    f = floor_summary(draws)
    out: dict[str, Any] = {f"{key}_floor": f.mean, f"{key}_floor_sd": f.sd,
                           f"{key}_floor_n": f.n}
    if f.mean > 0 and math.isfinite(value):
        iv = floor_ratio_interval(value, draws, confidence=confidence)
        out |= {f"{key}_ratio": iv.estimate, f"{key}_ratio_low": iv.low,
                f"{key}_ratio_high": iv.high}
    return out


def verdict(x_gen: Tensor, splits: DataSplits, cfg: EvalConfig,
            cache_dir: str | Path | None = None, *, w2_value: float | None = None,
            latent: tuple[Any, Tensor, float, float] | None = None) -> dict[str, Any]:
    """The job's scores with intervals, their floors over ``R`` draws, the calibrated verdict.

    ``latent``: ``(encode, z_test, latent_w2, latent_mmd)`` to give the latent W2 and MMD
    their floor draws too
    (not recomputed where the codec encodes the test points to themselves, as the identity
    codec without standardising does: the data draws are the latent ones).
    """
    if cfg.floor_draws < 3:
        raise ValueError(f"verdict needs floor_draws >= 3, got {cfg.floor_draws}")
    test = splits.test
    bandwidth = median_bandwidth(test, seed=cfg.seed)
    side = held_out(test, cfg, bandwidth)
    job, per_point = sample_scores(x_gen, side, splits, cfg, w2_value=w2_value)
    same = latent is not None and latent[1].shape == test.shape and bool(
        torch.equal(latent[1].detach().cpu().float(), test.float()))
    draws = floor_draws(splits, cfg, side, cache_dir,
                        None if latent is None or same else (latent[0], latent[1]))
    conf = cfg.confidence
    out: dict[str, Any] = dict(job)
    out |= _ratio_keys("data_w2", job["data_w2"], draws["data_w2"], conf)
    out |= _ratio_keys("data_mmd", job["data_mmd"], draws["data_mmd"], conf)
    if latent is not None:
        for i, name in ((2, "w2"), (3, "mmd")):
            z_draws = draws[f"data_{name}"] if same else draws[f"latent_{name}"]
            out |= _ratio_keys(f"latent_{name}", latent[i], z_draws, conf)
    for key, value in job.items():
        if key in ("data_w2", "data_mmd", "modes_found", "n_modes") or key not in draws:
            continue
        f = floor_summary(draws[key])
        out |= {f"{key}_floor": f.mean, f"{key}_floor_sd": f.sd}
        if not math.isfinite(value):
            continue
        if key in per_point and len(per_point[key]) >= 2:
            iv = bootstrap_mean_interval(per_point[key], confidence=conf, n_boot=cfg.bootstrap,
                                         seed=cfg.seed)
        else:
            iv = draw_interval(value, draws[key], confidence=conf)
        out |= {f"{key}_low": iv.low, f"{key}_high": iv.high}
        if key in TESTED:
            larger, transform = TESTED[key]
            if transform == "log" and min(draws[key]) <= 0:
                transform = "identity"
            out[f"{key}_p"] = worse_than_reference_p(value, draws[key], larger_is_worse=larger,
                                                     transform=transform)
    if "cross_entropy" in out:
        out["target_entropy"] = out.get("cross_entropy_floor")
    p, names = _worse_p(job, draws)
    out |= {"floor_draws": cfg.floor_draws, "worse_than_reference_p": p,
            "worse_than_reference": bool(p <= cfg.verdict_alpha), "verdict_scores": names}
    if len(x_gen) != len(test):
        # The rank test compares like with like: n_test-point draws against an n_test sample.
        out |= {"worse_than_reference_p": None, "worse_than_reference": None,
                "verdict_error": f"{len(x_gen)} generated points against {len(test)} test "
                                 "points: the verdict needs as many as n_test"}
    if cfg.mmd_permutations:
        out["data_mmd2_perm_p"] = mmd_test(x_gen, test, bandwidth=bandwidth,
                                           n_perm=cfg.mmd_permutations, max_n=cfg.mmd_max_n,
                                           seed=cfg.seed).p_value
    return out | _headline(out, splits.dim, cfg, draws)


def _headline(out: dict[str, Any], dim: int, cfg: EvalConfig,
              draws: dict[str, list[float]]) -> dict[str, Any]:
    key = headline_for(dim, cfg)
    if key == "data_w2_ratio":
        f = floor_summary(draws["data_w2"])
        return {"headline": key, "headline_value": out.get("data_w2_ratio"),
                "headline_low": out.get("data_w2_ratio_low"),
                "headline_high": out.get("data_w2_ratio_high"), "headline_reference": 1.0,
                "headline_noise_sd": f.sd / f.mean if f.mean > 0 else math.nan}
    f = floor_summary(draws["data_mmd2"])
    return {"headline": key, "headline_value": out["data_mmd2"],
            "headline_low": out.get("data_mmd2_low"), "headline_high": out.get("data_mmd2_high"),
            "headline_reference": f.mean, "headline_noise_sd": f.sd}


def _fmt_interval(m: dict[str, Any], key: str) -> str | None:
    value = m.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    low, high = m.get(f"{key}_low"), m.get(f"{key}_high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        return f"{value:.4g} [{low:.4g}, {high:.4g}]"
    return f"{value:.4g}"


def describe(m: dict[str, Any]) -> list[str]:
    """One job's verdict as short lines (console table, wandb summary); empty without it."""
    if m.get("headline") is None:
        return []
    conf = "95%"
    head = m["headline"]
    value = m.get("headline_value")
    low, high = m.get("headline_low"), m.get("headline_high")
    ref = m.get("headline_reference")
    text = f"{head} {value:.4g}" if isinstance(value, (int, float)) else f"{head} -"
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        text += f" [{low:.4g}, {high:.4g}] ({conf}; an exact draw scores {ref:.4g})"
    p = m.get("worse_than_reference_p")
    worse = "yes" if m.get("worse_than_reference") else "no"
    if m.get("verdict_error"):
        return [f"headline {text}", f"no verdict: {m['verdict_error']}"]
    lines = [f"headline {text}",
             f"worse than an exact reference draw? {worse} (rank p = {p:.3g}, "
             f"{m.get('floor_draws')} floor draws)" if isinstance(p, (int, float)) else ""]
    extra = [(label, _fmt_interval(m, key)) for label, key in (
        ("W2/floor", "data_w2_ratio"), ("MMD^2", "data_mmd2"), ("precision", "data_precision"),
        ("recall", "data_recall"), ("coverage", "data_coverage"),
        ("cross-entropy", "cross_entropy"))]
    lines.append(" | ".join(f"{label} {v}" for label, v in extra if v is not None))
    if m.get("target_entropy") is not None:
        lines[-1] += f" (H(p) ~ {m['target_entropy']:.4g})"
    if m.get("modes_found") is not None:
        lines.append(f"modes found {m['modes_found']:.0f}/{m.get('n_modes', 0):.0f}, "
                     f"mode-weight error {_fmt_interval(m, 'mode_weight_error')}")
    return [line for line in lines if line]
