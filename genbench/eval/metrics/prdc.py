"""k-nearest-neighbour precision, recall, density and coverage: fidelity vs diversity.

Each real point ``X_i`` (test set, N points) gets the ball ``B(X_i, NND_k(X_i))`` of radius
its distance to its k-th nearest other real point; likewise each generated point ``Y_j``
(M points) among the generated ones.

* precision (Kynkäänniemi et al. 2019, eq. 1-3): the fraction of ``Y_j`` inside the union
  of the real balls. Low when samples land off the data (blur, collapse off the support).
* recall (ibid.): the fraction of ``X_i`` inside the union of the generated balls. Low when
  a part of the data is never generated (missing mode, collapse).
* density (Naeem et al. 2020, eq. 3): ``(1 / (k M)) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))]``,
  about 1 when the laws agree, above 1 when samples crowd into dense regions.
* coverage (ibid., eq. 4): the fraction of ``X_i`` whose ball contains at least one
  ``Y_j``; uses real balls only, so it is not fooled by generated outliers as recall is.

All four are means over points; :func:`prdc` returns the per-point terms as well, for the
bootstrap of :mod:`genbench.eval.stats`. For identical laws precision and recall approach 1
only as ``k`` grows (Kynkäänniemi et al., Sec. 3; at k = 5 and n = 2000 they sit near 0.9
in low d); compare with the floor, not with 1. k = 5 follows Naeem et al. (Sec. 4).

References:
    Kynkäänniemi, Karras, Laine, Lehtinen, Aila, "Improved Precision and Recall Metric for
    Assessing Generative Models", NeurIPS 2019.
    Naeem, Oh, Uh, Choi, Yoo, "Reliable Fidelity and Diversity Metrics for Generative
    Models", ICML 2020.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

__all__ = ["PRDC", "knn_radii", "prdc"]


@dataclass(frozen=True)
class PRDC:
    """The four scores and their per-point terms (for bootstrap intervals)."""

    precision: float
    recall: float
    density: float
    coverage: float
    k: int
    per_point: dict[str, np.ndarray] = field(repr=False, compare=False)

    def scores(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "density": self.density,
                "coverage": self.coverage}


def _as_tensor(x: Tensor | np.ndarray, name: str, k: int) -> Tensor:
    t = x.detach().cpu() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x, float))
    if t.ndim != 2 or len(t) <= k:
        raise ValueError(f"{name} must have shape (n, d) with n > k = {k}, got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t.double()


def knn_radii(x: Tensor, k: int, chunk: int = 4096) -> Tensor:
    """Distance of each row of ``x`` to its k-th nearest *other* row."""
    out = []
    for start in range(0, len(x), chunk):
        d = torch.cdist(x[start:start + chunk], x)
        # The (k + 1)-th smallest includes the point itself at distance 0 (topk of a few
        # smallest: the same value as kthvalue, several times cheaper per row).
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, -1])
    return torch.cat(out)


def prdc(gen: Tensor | np.ndarray, real: Tensor | np.ndarray, *, k: int = 5,
         chunk: int = 2048, real_radii: Tensor | None = None) -> PRDC:
    """Precision, recall, density and coverage of ``gen`` against ``real`` (rows = points).

    ``real_radii``: ``knn_radii(real, k)`` computed once by a caller that scores many samples
    against the same real points (the floor draws), else computed here.
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    y, x = _as_tensor(gen, "gen", k), _as_tensor(real, "real", k)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"gen and real must share their dimension, got {tuple(y.shape)} "
                         f"and {tuple(x.shape)}")
    if real_radii is None:
        r_real = knn_radii(x, k)
    elif tuple(real_radii.shape) != (len(x),):
        raise ValueError(f"real_radii must have shape ({len(x)},), one radius per real point, "
                         f"got {tuple(real_radii.shape)}")
    else:
        r_real = real_radii.detach().cpu().double()
    r_gen = knn_radii(y, k)
    precision = torch.zeros(len(y), dtype=torch.bool)
    density = torch.zeros(len(y), dtype=torch.float64)
    recall, coverage = [], []
    # Blocks of real rows keep memory at chunk x M distances for any n.
    for start in range(0, len(x), chunk):
        d = torch.cdist(x[start:start + chunk], y)  # real i to generated j
        in_real_ball = d <= r_real[start:start + chunk, None]  # Y_j in B(X_i, NND_k(X_i))
        precision |= in_real_ball.any(dim=0)
        density += in_real_ball.sum(dim=0)
        coverage.append(in_real_ball.any(dim=1))
        recall.append((d <= r_gen[None, :]).any(dim=1))  # X_i in some B(Y_j, NND_k(Y_j))
    per_point = {
        "precision": precision.double().numpy(),  # per generated point
        "recall": torch.cat(recall).double().numpy(),  # per real point
        "density": (density / k).numpy(),  # per generated point
        "coverage": torch.cat(coverage).double().numpy(),  # per real point
    }
    means = {key: float(v.mean()) for key, v in per_point.items()}
    return PRDC(means["precision"], means["recall"], means["density"], means["coverage"], k,
                per_point)
