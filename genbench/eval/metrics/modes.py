"""Per-mode weight and coverage errors of a sample against a known isotropic Gaussian mixture.

For the target ``p = sum_k w_k N(mu_k, s^2 I)`` each generated point is assigned to a mode
by its posterior responsibility ``r_k(x) = w_k N(x; mu_k, s^2 I) / p(x)`` (Bishop, *Pattern
Recognition and Machine Learning*, 2006, eq. 9.23): ``hard`` takes the arg-max (the nearest
mode, shifted by ``log w_k``), ``soft`` averages the responsibilities. A point farther than
the ``off_mode_quantile`` of ``s * chi_d`` from its assigned mean is *off-mode* (under the
target that happens with probability ``1 - off_mode_quantile`` per point): it counts in
``off_mode_fraction`` and in no mode's weight.

* ``weights``: the on-mode share of each mode (sums to 1 over on-mode points);
* ``weight_error``: ``0.5 * sum_k |weights_k - w_k|``, the total-variation distance between
  the estimated and true mode weights (0 = exact; multinomial noise of order
  ``sqrt(K / n)`` for a target draw, so compare with the floor);
* ``modes_found``: modes holding at least ``min_share`` of their expected share;
* ``chi2_p``: Pearson's chi-square goodness-of-fit p-value of the hard counts against ``w``
  (asymptotic; every expected count should be >= 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats as sps
from torch import Tensor

__all__ = ["ModeReport", "mode_report"]


@dataclass(frozen=True)
class ModeReport:
    weights: np.ndarray
    weight_error: float
    modes_found: int
    n_modes: int
    off_mode_fraction: float
    chi2_p: float


def _check_mixture(means: np.ndarray, std: float,
                   weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(means, dtype=np.float64)
    if mu.ndim != 2 or len(mu) == 0:
        raise ValueError(f"means must have shape (K, d) with K >= 1, got {mu.shape}")
    if not (math.isfinite(std) and std > 0):
        raise ValueError(f"std must be a positive number, got {std}")
    w = np.full(len(mu), 1.0 / len(mu)) if weights is None else np.asarray(weights, float)
    if w.shape != (len(mu),) or np.any(w < 0) or not math.isclose(w.sum(), 1.0, rel_tol=1e-9):
        raise ValueError(f"weights must be {len(mu)} non-negative numbers summing to 1")
    return mu, w


def mode_report(samples: Tensor | np.ndarray, means: np.ndarray, std: float,
                weights: np.ndarray | None = None, *, assignment: str = "hard",
                min_share: float = 0.25, off_mode_quantile: float = 0.999) -> ModeReport:
    """Mode weights, weight error, modes found and off-mode fraction of ``samples``."""
    if assignment not in ("hard", "soft"):
        raise ValueError(f"assignment must be 'hard' or 'soft', got {assignment!r}")
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"min_share must lie in (0, 1], got {min_share}")
    if not 0.0 < off_mode_quantile < 1.0:
        raise ValueError(f"off_mode_quantile must lie in (0, 1), got {off_mode_quantile}")
    mu, w = _check_mixture(means, std, weights)
    x = samples.detach().cpu() if isinstance(samples, Tensor) else torch.as_tensor(
        np.asarray(samples, float))
    if x.ndim != 2 or x.shape[1] != mu.shape[1] or len(x) == 0:
        raise ValueError(f"samples must have shape (n, {mu.shape[1]}) with n >= 1, "
                         f"got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("samples contain NaN or infinite values")
    sq = torch.cdist(x.double(), torch.as_tensor(mu)).pow(2).numpy()  # (n, K)
    with np.errstate(divide="ignore"):
        logits = np.log(w)[None, :] - 0.5 * sq / std**2
    hard = logits.argmax(axis=1)
    radius = std * math.sqrt(sps.chi2.ppf(off_mode_quantile, df=mu.shape[1]))
    on = np.sqrt(sq[np.arange(len(x)), hard]) <= radius
    k = len(mu)
    if assignment == "hard":
        counts = np.bincount(hard[on], minlength=k).astype(float)
    else:
        resp = np.exp(logits - logits.max(axis=1, keepdims=True))
        resp /= resp.sum(axis=1, keepdims=True)
        counts = resp[on].sum(axis=0)
    n_on = counts.sum()
    est = counts / n_on if n_on > 0 else np.zeros(k)
    hard_counts = np.bincount(hard[on], minlength=k)
    keep = w > 0
    if n_on > 0 and keep.sum() > 1:
        chi2_p = float(sps.chisquare(hard_counts[keep], n_on * w[keep] / w[keep].sum()).pvalue)
    else:
        chi2_p = 0.0 if n_on == 0 else 1.0
    return ModeReport(est, float(0.5 * np.abs(est - w).sum()),
                      int(np.sum(keep & (est >= min_share * w))), int(keep.sum()),
                      float(1.0 - on.mean()), chi2_p)
