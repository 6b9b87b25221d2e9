"""Every headline score with its uncertainty, and a calibrated "worse than the reference?".

The floor of a score is no longer one reference draw but ``R = floor_draws`` independent
ones, each scored against the same test points exactly as a job is: fresh draws from the
target where it can be sampled, *resplits* (draws without replacement from the reference and
training points) where the data set is finite. The ``R`` draws are cached on disk
(``cache_dir/floors``) by the content of the test, reference (and, for finite sets, training)
points and the estimators' settings, so they cost once per data set, not once per job.

Per job (data space unless said otherwise):

* ``data_w2_floor`` (mean over draws), ``_floor_sd``, ``_floor_n``; ``data_w2_ratio`` =
  W2 / floor mean with ``data_w2_ratio_low`` / ``_high`` (:func:`~genbench.eval.stats.
  floor_ratio_interval`: the draws' sd taken as the job's own, *an approximation*); the same
  for ``latent_w2`` and for the V-statistic ``data_mmd``.
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

import hashlib
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from genbench.core.config import EvalConfig
from genbench.core.progress import bar
from genbench.eval.floors import cached_floor, w2_settings
from genbench.eval.metrics.likelihood import cross_entropy
from genbench.eval.metrics.mmd import median_bandwidth
from genbench.eval.metrics.mmd_test import mmd_test
from genbench.eval.metrics.modes import mode_report
from genbench.eval.metrics.prdc import prdc
from genbench.eval.metrics.w2 import w2
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


def _mmd2_both(x: Tensor, y: Tensor, bandwidth: float) -> tuple[float, float]:
    """Unbiased (U) and plug-in (V) MMD^2 from one set of kernel sums (Gretton et al., JMLR
    2012, eq. 3 and eq. 5); the kernel's diagonal is 1, which the U-statistic leaves out."""
    gamma = 1.0 / (2.0 * bandwidth**2)
    sxx = float(torch.exp(-gamma * torch.cdist(x, x).pow(2)).sum())
    syy = float(torch.exp(-gamma * torch.cdist(y, y).pow(2)).sum())
    sxy = float(torch.exp(-gamma * torch.cdist(x, y).pow(2)).sum())
    n, m = len(x), len(y)
    u = (sxx - n) / (n * (n - 1)) + (syy - m) / (m * (m - 1)) - 2 * sxy / (n * m)
    v = sxx / n**2 + syy / m**2 - 2 * sxy / (n * m)
    return u, v


def _mmd_v(z: Tensor, z_test: Tensor, cfg: EvalConfig) -> float:
    """The V-statistic MMD of the harness's latent score (median bandwidth of ``z_test``)."""
    z, z_test = z.detach().cpu().double(), z_test.detach().cpu().double()
    bandwidth = median_bandwidth(z_test, seed=cfg.seed)
    _, v = _mmd2_both(_subsample(z, cfg.mmd_max_n, cfg.seed),
                      _subsample(z_test, cfg.mmd_max_n, cfg.seed), bandwidth)
    return math.sqrt(max(v, 0.0))


def sample_scores(x: Tensor, test: Tensor, splits: DataSplits, cfg: EvalConfig,
                  bandwidth: float, *, w2_value: float | None = None
                  ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The verdict's scores of sample ``x`` against ``test``, and per-point terms (bootstrap)."""
    x, test = x.detach().cpu().double(), test.detach().cpu().double()
    out: dict[str, float] = {}
    per_point: dict[str, np.ndarray] = {}
    out["data_w2"] = w2_value if w2_value is not None else w2(x, test, **w2_settings(cfg))[0]
    xs, ts = _subsample(x, cfg.mmd_max_n, cfg.seed), _subsample(test, cfg.mmd_max_n, cfg.seed)
    u, v = _mmd2_both(xs, ts, bandwidth)
    out["data_mmd2"], out["data_mmd"] = u, math.sqrt(max(v, 0.0))
    if min(len(x), len(test)) > cfg.prdc_k:
        pr = prdc(x, test, k=cfg.prdc_k)
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


def _floor_draws(splits: DataSplits, cfg: EvalConfig, bandwidth: float,
                 cache_dir: str | Path | None, latent: tuple[Any, Tensor] | None
                 ) -> dict[str, list[float]]:
    """Every score of ``R`` reference draws against the test points, cached by content."""
    finite = splits.sampler is None
    reference = torch.cat([splits.reference, splits.train]) if finite else splits.reference
    settings = {"draws": cfg.floor_draws, "k": cfg.prdc_k, "bandwidth": bandwidth,
                "mmd_max_n": cfg.mmd_max_n, "finite": finite,
                "latent": None if latent is None else ["w2", "mmd"],
                "log_prob": splits.log_prob is not None, "mixture": splits.mixture is not None,
                **w2_settings(cfg)}
    test = splits.test

    def compute() -> dict[str, Any]:
        log.info("computing %d floor draws (once per data set; cached)", cfg.floor_draws)
        rows: list[dict[str, float]] = []
        progress = bar(cfg.floor_draws, desc="floor draws", unit="draw")
        for ref in reference_draws(splits, cfg.floor_draws):
            with torch.no_grad():  # scores only: no graph through the encoder
                row, _ = sample_scores(ref, test, splits, cfg, bandwidth)
                if latent is not None:
                    encode, z_test = latent
                    z_ref = encode(ref.to(z_test.device))
                    row["latent_w2"] = w2(z_ref, z_test, **w2_settings(cfg))[0]
                    row["latent_mmd"] = _mmd_v(z_ref, z_test, cfg)
            rows.append(row)
            progress.update(1)
        progress.close()
        return {k: [r[k] for r in rows] for k in rows[0]}

    # The latent draws depend on the codec: its encoding of the test points joins the key.
    key_ref = reference if latent is None else torch.cat(
        [reference.flatten(), latent[1].detach().cpu().flatten()])[:, None]
    return cached_floor("draws", compute, test, key_ref, settings, cache_dir)


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
    (not recomputed where the codec is the identity: the data draws are the latent ones).
    """
    if cfg.floor_draws < 3:
        raise ValueError(f"verdict needs floor_draws >= 3, got {cfg.floor_draws}")
    test = splits.test
    bandwidth = median_bandwidth(test, seed=cfg.seed)
    job, per_point = sample_scores(x_gen, test, splits, cfg, bandwidth, w2_value=w2_value)
    same = latent is not None and latent[1].shape == test.shape and bool(
        torch.equal(latent[1].detach().cpu().float(), test.float()))
    draws = _floor_draws(splits, cfg, bandwidth, cache_dir,
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
