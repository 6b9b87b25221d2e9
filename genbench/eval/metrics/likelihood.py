"""Cross-entropy of the generated law against a known target density, beside its entropy.

``CE(q, p) = E_{x~q}[-log p(x)] = H(q) + KL(q || p)`` (Cover & Thomas, *Elements of
Information Theory*, 2nd ed., eq. 2.90 with Thm. 2.6.3). With ``q = p`` it equals the
target's entropy ``H(p)``; the excess ``CE - H(p)`` is *not* ``KL(q || p)`` unless
``H(q) = H(p)``: a generator that concentrates on the target's densest regions (collapse onto
a mode centre) can score below ``H(p)``. Read it with a diversity score (recall, coverage,
mode weights). It is a Monte-Carlo mean over the generated points, so its interval is the
bootstrap over points (:mod:`genbench.eval.stats`).

``H(p)`` is closed form for a Gaussian, ``0.5 log det(2 pi e Sigma)`` (Cover & Thomas,
Thm. 8.4.1); for a mixture it has no closed form and is estimated by Monte Carlo as the
cross-entropy of an exact target draw (:func:`entropy_mc`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["CrossEntropy", "cross_entropy", "entropy_mc", "gaussian_entropy"]

LogDensity = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class CrossEntropy:
    """The mean of ``-log p`` over samples, its standard error and the per-point terms."""

    value: float
    stderr: float
    per_point: np.ndarray


def cross_entropy(samples: Tensor | np.ndarray, log_p: LogDensity, *,
                  batch: int = 8192) -> CrossEntropy:
    """``E_{x~q}[-log p(x)]`` over the rows of ``samples`` (nats), with its standard error."""
    x = samples.detach().cpu() if isinstance(samples, Tensor) else torch.as_tensor(
        np.asarray(samples, float))
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"samples must have shape (n, d) with n >= 2, got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("samples contain NaN or infinite values")
    x = x.double()
    with torch.no_grad():
        nll = torch.cat([-log_p(x[i:i + batch]).double().reshape(-1)
                         for i in range(0, len(x), batch)]).numpy()
    if nll.shape != (len(x),):
        raise ValueError(f"log_p must return one value per row, got {nll.shape} for {len(x)}")
    if not np.all(np.isfinite(nll)):
        # -log p = +inf outside the support: report it, never silently drop points.
        return CrossEntropy(math.inf, math.nan, nll)
    return CrossEntropy(float(nll.mean()), float(nll.std(ddof=1) / math.sqrt(len(nll))), nll)


def gaussian_entropy(cov: np.ndarray) -> float:
    """Differential entropy of ``N(m, cov)``: ``0.5 log det(2 pi e cov)`` (any mean)."""
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"cov must be a square matrix, got shape {c.shape}")
    if not np.allclose(c, c.T) or np.linalg.eigvalsh(c).min() <= 0:
        raise ValueError("cov must be symmetric positive definite")
    _, logdet = np.linalg.slogdet(2 * math.pi * math.e * c)
    return 0.5 * float(logdet)


def entropy_mc(sample: Callable[[int, np.random.Generator], np.ndarray], log_p: LogDensity,
               n: int, seed: int = 0) -> CrossEntropy:
    """Monte-Carlo ``H(p)``: the cross-entropy of ``n`` exact draws ``sample(n, rng)``."""
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    return cross_entropy(sample(n, np.random.default_rng(seed)), log_p)
