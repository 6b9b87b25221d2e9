"""The dimension study: latent and end-to-end error against n, at fixed intrinsic dimension d*
for several ambient dimensions D, and at fixed D for several d*.

Reads a sweep of ``experiment=dims`` (``manifold`` data: ``dataset.intrinsic_dim`` = d*,
``dataset.ambient_dim`` = D, ``dataset.n_train`` = n, seeds) and writes ``rates_dims.csv``,
``rates_dims.md`` and ``rates_dims.png``: for each solver, the latent W2
``W2(z_gen, encode(x_test))`` and the end-to-end W2 ``W2(x_gen, x_test)``, each over its
floor (the same distance between two target samples of the test size), against n.

What it tests: the latent Schrödinger bridge analysis (Jiao et al., arXiv 2404.13309) bounds
the end-to-end error through the latent dimension, not the ambient one; with data of
intrinsic dimension d* the claim is that the error grows with d* and not with D. The study
reports the errors; it fits no rate (two or three n per curve).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from genbench.core.storage import atomic_csv_write  # noqa: E402
from genbench.run.plots import save_figure  # noqa: E402
from genbench.sweep.jobs import as_number, load_jobs  # noqa: E402

__all__ = ["analyse_dims", "dims_rows", "plot_dims"]

KEYS = {"d*": "dataset.intrinsic_dim", "D": "dataset.ambient_dim", "n": "dataset.n_train"}
METRICS = ("latent_w2", "latent_w2_floor", "latent_w2_ratio", "data_w2", "data_w2_floor",
           "data_w2_ratio", "recon_w2")


def dims_rows(jobs: list[Any]) -> list[dict[str, Any]]:
    """Mean and std over seeds of each metric per (solver, d*, D, n)."""
    groups: dict[tuple[str, int, int, int], list[Any]] = defaultdict(list)
    for job in jobs:
        key = tuple(int(as_number(job.params.get(p))) for p in KEYS.values())
        groups[(job.solver, *key)].append(job)
    rows = []
    for (solver, k, d, n), group in sorted(groups.items()):
        row: dict[str, Any] = {"solver": solver, "d*": k, "D": d, "n": n, "count": len(group)}
        for metric in METRICS:
            vals = np.array([as_number(j.metrics.get(metric)) for j in group])
            finite = np.isfinite(vals).any()
            row[metric] = float(np.nanmean(vals)) if finite else math.nan
            row[f"{metric}_std"] = float(np.nanstd(vals)) if finite else math.nan
        rows.append(row)
    return rows


def _arms(rows: list[dict[str, Any]]) -> tuple[int | None, int | None]:
    """The d* shared by the most D values, and the D shared by the most d* values."""
    by_k: dict[int, set[int]] = defaultdict(set)
    by_d: dict[int, set[int]] = defaultdict(set)
    for r in rows:
        by_k[r["d*"]].add(r["D"])
        by_d[r["D"]].add(r["d*"])
    k = max(by_k, key=lambda v: len(by_k[v]), default=None)
    d = max(by_d, key=lambda v: len(by_d[v]), default=None)
    return k, d


def plot_dims(rows: list[dict[str, Any]], path: Path) -> Path:
    """One row per solver; columns: latent and end-to-end W2 / floor against n, at fixed d*
    (one line per D), then at fixed D (one line per d*)."""
    solvers = list(dict.fromkeys(r["solver"] for r in rows))
    k_fixed, d_fixed = _arms(rows)
    fig, axes = plt.subplots(len(solvers), 4, figsize=(16, 3.2 * len(solvers)), dpi=100,
                             squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    columns = [("latent_w2_ratio", "d*", k_fixed, "D"), ("data_w2_ratio", "d*", k_fixed, "D"),
               ("latent_w2_ratio", "D", d_fixed, "d*"), ("data_w2_ratio", "D", d_fixed, "d*")]
    for i, solver in enumerate(solvers):
        for j, (metric, fixed, value, varied) in enumerate(columns):
            ax = axes[i, j]
            sel = [r for r in rows if r["solver"] == solver and r[fixed] == value]
            for c, level in enumerate(sorted({r[varied] for r in sel})):
                pts = sorted((r for r in sel if r[varied] == level), key=lambda r: r["n"])
                ax.errorbar([r["n"] for r in pts], [r[metric] for r in pts],
                            yerr=[r[f"{metric}_std"] for r in pts], fmt="o-", ms=4, capsize=3,
                            color=colors[c % len(colors)], label=f"{varied} = {level}")
            ax.axhline(1.0, color="0.6", lw=1, ls=":")
            ax.set_xscale("log")
            space = "latent" if metric.startswith("latent") else "end to end"
            ax.set_title(f"{solver}: {space}, {fixed} = {value}", fontsize=9)
            ax.set_xlabel("training samples n")
            ax.set_ylabel("W2 / floor")
            ax.legend(fontsize=7)
            ax.grid(True, which="both", alpha=0.25)
    return save_figure(fig, path)


def analyse_dims(sweep_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Read the sweep, write ``rates_dims.{csv,md,png}``; returns ``{name: path}``."""
    jobs = [j for j in load_jobs(sweep_dir) if j.ok and j.dataset == "manifold"]
    if not jobs:
        raise ValueError(f"no successful manifold job under {sweep_dir}")
    rows = dims_rows(jobs)
    out = Path(out_dir) if out_dir is not None else Path(sweep_dir) / "rates"
    out.mkdir(parents=True, exist_ok=True)
    columns = ["solver", "d*", "D", "n", "count", "latent_w2", "latent_w2_ratio", "data_w2",
               "data_w2_ratio", "recon_w2"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c])
                                for c in columns) + " |" for r in rows]
    (out / "rates_dims.md").write_text(
        "# Error against n at fixed d* (several D) and fixed D (several d*)\n\n"
        + "\n".join(lines) + "\n")
    return {"csv": atomic_csv_write(out / "rates_dims.csv", rows),
            "markdown": out / "rates_dims.md", "figure": plot_dims(rows, out / "rates_dims.png")}
