"""Figures of one job (generated versus held-out target points), and the figure writer
every report uses (atomic, like every other result file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from genbench.core.storage import atomic_write  # noqa: E402

__all__ = ["project_2d", "save_figure", "scatter_samples"]


def save_figure(fig: Any, path: Path, *, tight: bool = True) -> Path:
    """Lay out ``fig``, write it atomically to ``path`` (format from the suffix), close it."""
    if tight:
        fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda fh: fig.savefig(fh, format=path.suffix.lstrip(".") or "png"))
    plt.close(fig)
    return path


def project_2d(*arrays: Tensor) -> list[Tensor]:
    """Arrays of dimension > 2 projected on the top two principal axes of the first."""
    first = arrays[0].detach().cpu().float()
    if first.shape[1] <= 2:
        return [a.detach().cpu().float() for a in arrays]
    mean = first.mean(0)
    _, _, vh = torch.linalg.svd(first - mean, full_matrices=False)
    return [(a.detach().cpu().float() - mean) @ vh[:2].T for a in arrays]


def scatter_samples(x_gen: Tensor, x_test: Tensor, path: Path, *, title: str = "",
                    max_points: int = 2000) -> Path:
    """Scatter of target (grey) and generated (blue) points, written to ``path``."""
    test, gen = project_2d(x_test[:max_points], x_gen[:max_points])
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ax.scatter(test[:, 0], test[:, 1], s=3, c="0.6", alpha=0.6, label="target (test)")
    ax.scatter(gen[:, 0], gen[:, 1], s=3, c="tab:blue", alpha=0.6, label="generated")
    if gen.shape[1] > 1:
        lo = torch.minimum(test.min(0).values, gen.min(0).values.clamp(min=-1e3))
        hi = torch.maximum(test.max(0).values, gen.max(0).values.clamp(max=1e3))
        pad = 0.05 * (hi - lo)
        ax.set_xlim(float(lo[0] - pad[0]), float(hi[0] + pad[0]))
        ax.set_ylim(float(lo[1] - pad[1]), float(hi[1] + pad[1]))
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    return save_figure(fig, path)
