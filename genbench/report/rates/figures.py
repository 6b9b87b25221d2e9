"""Figures of the rate study (:mod:`genbench.report.rates.study`): error against n and d*."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from genbench.run.plots import save_figure  # noqa: E402

__all__ = ["plot_latent_dim", "plot_rates"]

THEORY_STYLES = (":", "-.", (0, (5, 1, 1, 1, 1, 1)))
LABELS = {"data_w2": "W2, data space", "data_w1": "W1, data space", "data_tv": "TV, data space",
          "latent_w2": "W2, latent space", "latent_w1": "W1, latent space",
          "latent_tv": "TV, latent space"}


def _rows(rows: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def _grid(n_rows: int, n_cols: int) -> tuple[Any, np.ndarray]:
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(5.2 * n_cols, 4.2 * n_rows), dpi=110,
                             squeeze=False)
    return fig, axes


def _tick_at(ax: Any, values: list[float]) -> None:
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _theory_lines(ax: Any, fit: dict[str, Any], prefix: str, grid: np.ndarray, start: float,
                  color: str) -> None:
    """The exponents ``fit[prefix + label]`` as lines through ``(grid[0], start)``."""
    theory = [(k.removeprefix(prefix), v) for k, v in fit.items() if k.startswith(prefix)]
    for (label, exponent), style in zip(theory, THEORY_STYLES, strict=False):
        ax.plot(grid, start * (grid / grid[0]) ** exponent, color=color, lw=1, ls=style,
                label=f"{label} = {exponent:.3f} (d={fit['dim']:g})")


def plot_rates(fits: list[dict[str, Any]], points: list[dict[str, Any]], path: Path) -> Path:
    """One panel per (data set, metric): mean +- std over seeds per n, fits, memoriser,
    floor and theory lines (each only against the metric its theorem bounds), log-log. The
    generator's theory lines start at the geometric mean of the fits at the smallest n, the
    memoriser's at its own fit there."""
    panels = list(dict.fromkeys(p["panel"] for p in points))
    metrics = list(dict.fromkeys(p["metric"] for p in points))
    fig, axes = _grid(len(panels), len(metrics))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, panel in enumerate(panels):
        for j, metric in enumerate(metrics):
            ax = axes[i, j]
            series = list(dict.fromkeys(p["series"] for p in _rows(points, panel=panel,
                                                                   metric=metric)))
            starts: list[float] = []
            anchor = None
            for k, name in enumerate(series):
                color = colors[k % len(colors)]
                pts = sorted(_rows(points, panel=panel, metric=metric, series=name),
                             key=lambda p: p["n"])
                n = np.array([p["n"] for p in pts])
                ax.errorbar(n, [p["mean"] for p in pts], yerr=[p["std"] for p in pts],
                            fmt="o", color=color, capsize=3, ms=4)
                fit = next(iter(_rows(fits, panel=panel, metric=metric, series=name)), {})
                if "slope" in fit:
                    grid = np.geomspace(n.min(), n.max(), 50)
                    ax.plot(grid, np.exp(fit["intercept"]) * grid ** fit["slope"], color=color,
                            label=f"{name}: slope {fit['slope']:.3f} "
                                  f"[{fit['slope_low']:.3f}, {fit['slope_high']:.3f}]")
                    starts.append(float(np.exp(fit["intercept"]) * grid[0] ** fit["slope"]))
                    anchor = anchor or (fit, grid)
                if k == 0:
                    base = [p["baseline_mean"] for p in pts]
                    if np.isfinite(base).any():
                        ax.plot(n, base, "s", color="0.45", ms=4, mfc="none")
                    if "baseline_slope" in fit:
                        ax.plot(grid, np.exp(fit["baseline_intercept"]) * grid
                                ** fit["baseline_slope"], "--", color="0.45",
                                label=f"memoriser: slope {fit['baseline_slope']:.3f} "
                                      f"[{fit['baseline_low']:.3f}, {fit['baseline_high']:.3f}]")
                        _theory_lines(ax, fit, "memoriser theory: ", grid,
                                      float(np.exp(fit["baseline_intercept"])
                                            * grid[0] ** fit["baseline_slope"]), "0.45")
                    if math.isfinite(pts[0]["floor"]):
                        ax.axhline(pts[0]["floor"], color="0.7", lw=2, alpha=0.6,
                                   label=f"floor at the test size ({pts[0]['floor']:.3g})")
            if anchor is not None:
                fit, grid = anchor
                _theory_lines(ax, fit, "theory: ", grid, float(np.exp(np.mean(np.log(starts)))),
                              "k")
            ax.set_xscale("log")
            ax.set_yscale("log")
            _tick_at(ax, sorted({p["n"] for p in points}))
            ax.set_xlabel("training samples n")
            ax.set_ylabel(LABELS.get(metric, metric))
            ax.set_title(panel, fontsize=9)
            ax.legend(fontsize=6.5, loc="best")
            ax.grid(True, which="both", alpha=0.25)
    return save_figure(fig, path)


def plot_latent_dim(rows: list[dict[str, Any]], path: Path) -> Path:
    """Per data set: data-space W2 (end to end), reconstruction W2 and the floor against d*;
    and the W2 ratios over their floors (data and latent space)."""
    panels = list(dict.fromkeys(r["panel"] for r in rows))
    fig, axes = _grid(len(panels), 2)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, panel in enumerate(panels):
        left, right = axes[i, 0], axes[i, 1]
        series = list(dict.fromkeys(r["series"] for r in _rows(rows, panel=panel)))
        for k, name in enumerate(series):
            color = colors[k % len(colors)]
            pts = sorted(_rows(rows, panel=panel, series=name), key=lambda r: r["latent_dim"])
            d = np.array([r["latent_dim"] for r in pts])

            def line(ax: Any, key: str, style: str, label: str, pts: Any = pts, d: Any = d,
                     color: str = color) -> None:
                ax.errorbar(d, [r[key] for r in pts], yerr=[r[f"{key}_std"] for r in pts],
                            fmt=style, color=color, capsize=3, ms=4, label=label)

            line(left, "data_w2", "o-", f"{name}: end to end W2(x_gen, x_test)")
            line(left, "recon_w2", "s--", f"{name}: reconstruction W2")
            line(right, "data_w2_ratio", "o-", f"{name}: data W2 / floor")
            line(right, "latent_w2_ratio", "^--", f"{name}: latent W2 / floor")
            if k == 0:
                left.plot(d, [r["data_w2_floor"] for r in pts], ":", color="0.5",
                          label="floor at the test size")
        right.axhline(1.0, color="0.6", lw=1, ls=":")
        for ax, ylabel in ((left, "W2, data space"), (right, "W2 / its floor")):
            ax.set_xscale("log", base=2)
            _tick_at(ax, sorted({r["latent_dim"] for r in rows}))
            ax.set_xlabel("latent dimension d*")
            ax.set_ylabel(ylabel)
            ax.set_title(panel, fontsize=9)
            ax.legend(fontsize=7)
            ax.grid(True, alpha=0.25)
    return save_figure(fig, path)
