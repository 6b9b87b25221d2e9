"""Figures of a sweep's report: samples grid, W2 against NFE, training losses, rate plots.

Every figure is drawn from what the jobs saved (``samples.npz``, ``results.json``), so a
report can be rebuilt at any time without re-running a job.

References:
    J. D. Hunter, "Matplotlib: a 2D graphics environment", Computing in Science &
    Engineering 9(3), 2007.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

from genbench.run.files import SAMPLES_FILE  # noqa: E402
from genbench.run.plots import project_2d, save_figure  # noqa: E402

if TYPE_CHECKING:
    from genbench.report.leaderboard import Entry, Leaderboard

__all__ = ["draw_figures", "loss_curves", "rate_plots", "samples_grid", "w2_against_nfe"]

log = logging.getLogger(__name__)
MAX_GRID_ROWS = 24
MAX_POINTS = 1000


def _row_order(board: Leaderboard) -> list[tuple[str, str]]:
    """(solver, variant) pairs, best overall first, then any never ranked."""
    order = [(r["solver"], r["variant"]) for r in board.overall()]
    rest = sorted({(e.solver, e.variant) for e in board.entries if e.ok} - set(order))
    return order + rest


def _label(solver: str, variant: str) -> str:
    return f"{solver}\n({variant})" if variant else solver


def samples_grid(board: Leaderboard, path: Path) -> Path | None:
    """Generated (blue) and target (black) points, one panel per (solver variant, data set).

    Rows are solver variants and columns data sets; a sweep over one data set (the quick
    sweep) lays its solvers out side by side instead, up to five per row.
    """
    rows, cols = _row_order(board)[:MAX_GRID_ROWS], board.datasets
    if not rows:
        return None
    cells = {(e.solver, e.variant, e.dataset): e for e in board.entries}
    single = len(cols) == 1
    if single:
        per_row = min(len(rows), 5)
        shape = (math.ceil(len(rows) / per_row), per_row)
        panels = [(divmod(k, per_row), row, cols[0]) for k, row in enumerate(rows)]
    else:
        shape = (len(rows), len(cols))
        panels = [((i, j), row, dataset) for i, row in enumerate(rows)
                  for j, dataset in enumerate(cols)]
    fig, axes = plt.subplots(*shape, squeeze=False, dpi=90,
                             figsize=(2.3 * shape[1] + 0.6, 2.3 * shape[0] + 0.3))
    for ax in axes.flat:
        ax.set_axis_off()
    for (i, j), (solver, variant), dataset in panels:
        ax = axes[i][j]
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        if single:
            ax.set_title(_label(solver, variant), fontsize=9)
        else:
            if i == 0:
                ax.set_title(dataset, fontsize=10, fontweight="bold")
            if j == 0:
                ax.set_ylabel(_label(solver, variant), fontsize=8)
        _scatter_panel(ax, cells.get((solver, variant, dataset)))
    where = f"{cols[0]}: " if single else ""
    fig.suptitle(f"{where}generated (blue) vs held-out target (black)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    return save_figure(fig, path, tight=False)


def _scatter_panel(ax: Any, entry: Entry | None) -> None:
    """One panel: the first successful seed's samples over its target, or why there are none."""
    job = min(entry.ok, key=lambda jb: jb.seed or 0) if entry and entry.ok else None
    if job is None or not (job.folder / SAMPLES_FILE).exists():
        ax.text(0.5, 0.5, "failed" if entry else "not run", ha="center",
                va="center", transform=ax.transAxes, color="0.4")
        return
    try:
        with np.load(job.folder / SAMPLES_FILE) as npz:
            test, gen = (torch.from_numpy(npz[k][:MAX_POINTS]).float()
                         for k in ("x_test", "x_gen"))
    except Exception as err:  # noqa: BLE001 - a torn file costs this panel, not the grid
        log.warning("report: %s unreadable (%s); its panel is left empty",
                    job.folder / SAMPLES_FILE, type(err).__name__)
        ax.text(0.5, 0.5, "samples unreadable", ha="center", va="center",
                transform=ax.transAxes, color="0.4")
        return
    test, gen = project_2d(test, gen)
    # the target on top, small and dark: its shape stays readable over the samples
    ax.scatter(gen[:, 0], gen[:, 1], s=3, c="tab:blue", alpha=0.35, linewidths=0)
    ax.scatter(test[:, 0], test[:, 1], s=1, c="0.15", alpha=0.6, linewidths=0)
    lo, hi = test.min(0).values.numpy(), test.max(0).values.numpy()
    pad = 0.15 * (hi - lo) + 1e-6
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    if test.shape[1] > 1:
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ratio = job.metrics.get("data_w2_ratio")
    ax.text(0.03, 0.03, f"W2/floor {ratio:.2f} (seed {job.seed})"
            if isinstance(ratio, (int, float)) else f"seed {job.seed}",
            transform=ax.transAxes, fontsize=7, color="0.2")


def _nfe_keys(entries: list[Entry]) -> set[str]:
    """Parameters of a solver whose values change its NFE (e.g. ``sample_steps``)."""
    keys: set[str] = set()
    for key in {k for e in entries for j in e.ok for k in j.params}:
        nfe_by_value: dict[str, set[float]] = defaultdict(set)
        for e in entries:
            for j in e.ok:
                nfe_by_value[repr(j.params.get(key))].add(float(j.metrics.get("nfe", math.nan)))
        if len(nfe_by_value) > 1 and len({frozenset(v) for v in nfe_by_value.values()}) > 1:
            keys.add(key)
    return keys


def w2_against_nfe(board: Leaderboard, path: Path, metric: str = "data_w2") -> Path | None:
    """Mean +/- std of W2 against NFE per solver line, one panel per data set; ``None``
    when no solver was run at more than one NFE."""
    lines: dict[str, dict[tuple[str, str], list[Entry]]] = defaultdict(dict)
    for dataset in board.datasets:
        by_solver: dict[str, list[Entry]] = defaultdict(list)
        for e in board.entries:
            if e.dataset == dataset and e.ok:
                by_solver[e.solver].append(e)
        for solver, entries in by_solver.items():
            drop = {k.removeprefix("solver.") for k in _nfe_keys(entries)}
            for e in entries:
                rest = ", ".join(f"{k}={v}" for k, v in e.jobs[0].varying.items()
                                 if k not in drop)
                lines[dataset].setdefault((solver, rest), []).append(e)
    if not any(len({e.mean_std("nfe")[0] for e in es}) > 1
               for d in lines.values() for es in d.values()):
        return None
    datasets = [d for d in board.datasets if lines[d]]
    fig, axes = plt.subplots(1, len(datasets), squeeze=False, dpi=90,
                             figsize=(4.2 * len(datasets), 3.6))
    for ax, dataset in zip(axes[0], datasets, strict=True):
        floors = []
        for (solver, rest), entries in sorted(lines[dataset].items()):
            entries = sorted(entries, key=lambda e: e.mean_std("nfe")[0])
            x = [e.mean_std("nfe")[0] for e in entries]
            y, err = zip(*(e.mean_std(metric) for e in entries), strict=True)
            ax.errorbar(x, y, yerr=np.nan_to_num(err), marker="o", ms=4, capsize=2,
                        label=f"{solver} ({rest})" if rest else solver)
            floors += [e.mean_std(f"{metric}_floor")[0] for e in entries]
        if floors and not all(math.isnan(f) for f in floors):
            ax.axhline(float(np.nanmean(floors)), ls="--", c="0.5", lw=1, label="floor")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # plain numbers, not powers of ten
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(NullFormatter())
        ax.set_xticks(sorted({round(e.mean_std("nfe")[0]) for es in lines[dataset].values()
                              for e in es}))
        ax.set_xlabel("NFE (network calls per sample)")
        ax.set_ylabel(metric)
        ax.set_title(dataset, fontsize=10)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def _mean_curves(board: Leaderboard, dataset: str) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(steps, mean loss over seeds, label) per entry; variants that differ only in how they
    sample train identically and share one curve (labelled with their number)."""
    curves: dict[bytes, tuple[np.ndarray, np.ndarray, list[str]]] = {}
    for e in (e for e in board.entries if e.dataset == dataset):
        runs = [np.asarray(j.loss_curve, dtype=float) for j in e.ok if j.loss_curve]
        if not runs:
            continue
        n = min(len(c) for c in runs)
        steps, loss = runs[0][:n, 0], np.mean([c[:n, 1] for c in runs], axis=0)
        key = e.solver.encode() + steps.tobytes() + loss.tobytes()
        curves.setdefault(key, (steps, loss, []))[2].append(e.label)
    return [(steps, loss, labels[0] if len(labels) == 1
             else f"{labels[0].split(' (')[0]} ({len(labels)} variants)")
            for steps, loss, labels in curves.values()]


def loss_curves(board: Leaderboard, path: Path) -> Path | None:
    """Training loss against step, mean over seeds, one panel per data set."""
    panels = {d: c for d in board.datasets if (c := _mean_curves(board, d))}
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), squeeze=False, dpi=90,
                             figsize=(4.2 * len(panels), 3.4))
    for ax, (dataset, curves) in zip(axes[0], panels.items(), strict=True):
        for steps, loss, label in curves:
            ax.plot(steps, loss, lw=1.2, label=label)
        if all(np.all(loss > 0) for _, loss, _ in curves):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (mean over seeds)")
        ax.set_title(dataset, fontsize=10)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def rate_plots(board: Leaderboard, out: Path) -> dict[str, Path]:
    """Any ``rates*.png`` a rate study left in the sweep folder (outside ``out``)."""
    found = sorted(p for p in board.root.rglob("rates*.png") if out not in p.parents)
    return {f"rates: {p.relative_to(board.root)}": p for p in found}


def draw_figures(board: Leaderboard, out: Path) -> dict[str, Path]:
    """Every figure of the report, written under ``out``; keyed by caption."""
    figures: dict[str, Path] = {}
    drawers = {"generated vs target samples": (samples_grid, "samples_grid.png"),
               "W2 against NFE": (w2_against_nfe, "w2_vs_nfe.png"),
               "training loss": (loss_curves, "loss_curves.png")}
    for caption, (draw, name) in drawers.items():
        try:
            path = draw(board, out / name)
        except Exception as err:  # noqa: BLE001 - one broken figure must not cost the report
            log.warning("report: figure %r failed: %s: %s", caption, type(err).__name__, err)
            plt.close("all")
            continue
        if path is not None:
            figures[caption] = path
    return figures | rate_plots(board, out)
