"""The rate study's analysis: ``genbench-rates SWEEP_DIR`` reads a sweep, fits, tables, plots.

A sweep of ``experiment=rates`` (``dataset.n_train x seed``) or ``experiment=latent_dim``
(``autoencoder.latent_dim x seed``) leaves one ``results.json`` per job. This command groups
the jobs by everything that varies except the swept axis and the seed, and writes to
``SWEEP_DIR/rates/`` (or ``--out``):

- sample-size mode (``--x n_train``): for each group and metric (``data_w2``, ``data_w1``,
  ``data_tv`` by default) the mean and spread over seeds at each ``n``
  (``rates_points.csv``); the fitted log-log slope with its confidence interval beside the
  slope of the *memoriser* (the training sample scored as if generated: ``empirical_*``);
  the fixed floor at the test size; the ratio at the largest ``n`` (near 1 the fit is
  floor-limited); the generator's theory exponents (Oko et al.: TV against TV, W1 against
  W1, none against W2) and the memoriser's (Fournier-Guillin, W1 and W2), each with its
  source in :mod:`genbench.report.rates.fit` (``rates.csv``, ``rates.md``); and the figure
  ``rates.png``: mean and spread per ``n``, fitted lines, theory lines, the floor;
- dimension mode (``--x dims``, :mod:`genbench.report.rates.dims`): latent and end-to-end
  W2 against n at fixed d* for several D and at fixed D for several d*;
- latent-dimension mode (``--x latent_dim``): the end-to-end decomposition against ``d*``:
  data W2 (end to end), reconstruction W2, latent W2 over its floor (``rates_latent_dim.*``).

References:
    See :mod:`genbench.report.rates.fit` for the fitted model and the theoretical exponents.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genbench.core.storage import atomic_csv_write
from genbench.report.rates.fit import fit_power_law, memoriser_exponents, theory_exponents
from genbench.sweep.jobs import as_number, load_jobs

__all__ = ["X_KEYS", "analyse", "main", "rate_rows"]

log = logging.getLogger(__name__)
X_KEYS = {"n_train": "dataset.n_train", "latent_dim": "autoencoder.latent_dim"}
DECOMPOSITION = ("data_w2", "recon_w2", "data_w2_floor", "data_w2_ratio", "latent_w2_ratio",
                 "data_tv")


def _groups(jobs: list[Any], x_param: str) -> dict[tuple[str, str], list[Any]]:
    """Jobs keyed by (panel, series): panel = data set + varying non-solver settings,
    series = solver + the solver settings that vary among that solver's jobs (each solver has
    its own keys); the swept axis and the seed are left out."""
    def varying(group: list[Any], solver_keys: bool) -> list[str]:
        keys = {k for j in group for k in j.params if k.startswith("solver.") == solver_keys}
        return sorted(k for k in keys
                      if k != x_param and len({repr(j.params.get(k)) for j in group}) > 1)

    shared = varying(jobs, solver_keys=False)
    by_solver: dict[str, list[Any]] = defaultdict(list)
    for job in jobs:
        by_solver[job.solver].append(job)
    own = {name: varying(group, solver_keys=True) for name, group in by_solver.items()}
    out: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for job in jobs:
        panel = ", ".join([job.dataset] + [f"{k}={job.params.get(k)}" for k in shared])
        series = ", ".join([job.solver] + [f"{k.removeprefix('solver.')}={job.params.get(k)}"
                                           for k in own[job.solver]])
        out[panel, series].append(job)
    return dict(out)


def _x_value(job: Any, x: str) -> float:
    return as_number(job.metrics.get(x, job.params.get(X_KEYS[x])))


def rate_rows(jobs: list[Any], metrics: Sequence[str], *, smoothness: float = 2.0,
              confidence: float = 0.95) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(fits, points)``: one fit row per group and metric, one point row per group, metric
    and ``n`` (mean, std and count over seeds)."""
    fits, points = [], []
    for (panel, series), group in sorted(_groups(jobs, X_KEYS["n_train"]).items()):
        n = np.array([_x_value(j, "n_train") for j in group])
        dim = float(np.nanmedian([as_number(j.metrics.get("latent_dim")) for j in group]))
        for metric in metrics:
            values = np.array([as_number(j.metrics.get(metric)) for j in group])
            baseline_key = metric.replace("data_", "empirical_", 1)
            baseline = np.array([as_number(j.metrics.get(baseline_key)) for j in group])
            floor = float(np.nanmean([as_number(j.metrics.get(f"{metric}_floor")) for j in group]))
            for size in sorted(set(n)):
                at = n == size
                points.append({"panel": panel, "series": series, "metric": metric, "n": size,
                               "mean": float(np.nanmean(values[at])),
                               "std": float(np.nanstd(values[at])), "count": int(at.sum()),
                               "baseline_mean": float(np.nanmean(baseline[at]))
                               if np.isfinite(baseline[at]).any() else math.nan,
                               "floor": floor})
            row: dict[str, Any] = {"panel": panel, "series": series, "metric": metric,
                                   "dim": dim, "floor": floor}
            try:
                fit = fit_power_law(n, values, confidence=confidence)
            except ValueError as err:
                log.warning("%s / %s / %s: no fit: %s", panel, series, metric, err)
                fits.append(row | {"error": str(err)})
                continue
            largest = n == n.max()
            row |= {"slope": fit.slope, "slope_low": fit.slope_low, "slope_high": fit.slope_high,
                    "r2": fit.r2, "n_points": fit.n_points, "n_dropped": fit.n_dropped,
                    "intercept": fit.intercept,
                    "ratio_at_max_n": float(np.nanmean(values[largest])) / floor
                    if floor > 0 else math.nan}
            if np.isfinite(baseline).sum() >= 3:
                try:
                    base = fit_power_law(n, baseline, confidence=confidence)
                    row |= {"baseline_slope": base.slope, "baseline_low": base.slope_low,
                            "baseline_high": base.slope_high,
                            "baseline_intercept": base.intercept}
                    row |= {f"memoriser theory: {k}": v
                            for k, v in memoriser_exponents(metric, dim).items()}
                except ValueError as err:
                    log.warning("%s / %s: no baseline fit: %s", panel, baseline_key, err)
            row |= {f"theory: {k}": v for k, v in theory_exponents(metric, dim, smoothness).items()}
            fits.append(row)
    return fits, points


def latent_dim_rows(jobs: list[Any]) -> list[dict[str, Any]]:
    """Mean and std over seeds of the decomposition at each latent dimension ``d*``."""
    rows = []
    for (panel, series), group in sorted(_groups(jobs, X_KEYS["latent_dim"]).items()):
        dims = np.array([_x_value(j, "latent_dim") for j in group])
        for d in sorted(set(dims)):
            at = [j for j, dj in zip(group, dims, strict=True) if dj == d]
            row: dict[str, Any] = {"panel": panel, "series": series, "latent_dim": d,
                                   "count": len(at)}
            for metric in DECOMPOSITION:
                vals = np.array([as_number(j.metrics.get(metric)) for j in at])
                finite = np.isfinite(vals).any()
                row[metric] = float(np.nanmean(vals)) if finite else math.nan
                row[f"{metric}_std"] = float(np.nanstd(vals)) if finite else math.nan
            rows.append(row)
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _markdown_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _rates_markdown(fits: list[dict[str, Any]], confidence: float) -> str:
    table = []
    for r in fits:
        ci = (f"[{r['slope_low']:.3f}, {r['slope_high']:.3f}]" if "slope" in r
              else r.get("error", ""))
        base = (f"{r['baseline_slope']:.3f} [{r['baseline_low']:.3f}, {r['baseline_high']:.3f}]"
                if "baseline_slope" in r else "")
        theory = "; ".join(f"{k.removeprefix('theory: ')}: {v:.3f}"
                           for k, v in r.items() if k.startswith("theory: "))
        memo = "; ".join(f"{k.removeprefix('memoriser theory: ')}: {v:.3f}"
                         for k, v in r.items() if k.startswith("memoriser theory: "))
        table.append({"data set": r["panel"], "solver": r["series"], "metric": r["metric"],
                      "d": r["dim"], "slope": r.get("slope", math.nan),
                      f"{confidence:.0%} CI": ci, "memoriser slope": base,
                      "memoriser theory": memo, "floor": r["floor"],
                      "ratio at max n": r.get("ratio_at_max_n", math.nan),
                      "theory (generator)": theory})
    columns = list(table[0]) if table else []
    return ("# Sample-size rates\n\nLog-log slope of each metric against the number of "
            "training samples n (all seeds), beside the memoriser's (the training sample "
            "scored as if generated) and the theory's exponents: Oko et al. (ICML 2023) for "
            "the generator, TV against TV and W1 against W1 (none against W2); "
            "Fournier-Guillin (PTRF 2015, Thm 1) for the memoriser. Sources and assumptions: "
            "genbench/report/rates/fit.py and docs/rates.md. A ratio at the largest n "
            "near 1 means the metric has reached its floor and the fit flattens.\n\n"
            + _markdown_table(table, columns) + "\n")


def analyse(sweep_dir: str | Path, out_dir: str | Path | None = None, *, x: str = "auto",
            metrics: Sequence[str] = ("data_w2", "data_w1", "data_tv"), smoothness: float = 2.0,
            confidence: float = 0.95) -> dict[str, Path]:
    """Read the sweep, write the tables and the figure; returns ``{name: path}``."""

    jobs = [j for j in load_jobs(sweep_dir) if j.ok]
    if not jobs:
        raise ValueError(f"no successful job under {sweep_dir}")
    if x == "auto":
        spread = {k: len({_x_value(j, k) for j in jobs}) for k in X_KEYS}
        x = max(spread, key=spread.__getitem__)
        if spread[x] < 2:
            raise ValueError(f"the sweep varies neither {' nor '.join(X_KEYS.values())}; "
                             "nothing to fit")
    if x not in X_KEYS:
        raise ValueError(f"x must be auto or one of {list(X_KEYS)}, got {x!r}")
    out = Path(out_dir) if out_dir is not None else Path(sweep_dir) / "rates"
    out.mkdir(parents=True, exist_ok=True)
    from genbench.report.rates.figures import plot_latent_dim, plot_rates

    if x == "latent_dim":
        rows = latent_dim_rows(jobs)
        md = ("# End-to-end error against the latent dimension d*\n\n"
              + _markdown_table(rows, ["panel", "series", "latent_dim", "count",
                                       *DECOMPOSITION]) + "\n")
        (out / "rates_latent_dim.md").write_text(md)
        return {"csv": atomic_csv_write(out / "rates_latent_dim.csv", rows),
                "markdown": out / "rates_latent_dim.md",
                "figure": plot_latent_dim(rows, out / "rates_latent_dim.png")}
    fits, points = rate_rows(jobs, metrics, smoothness=smoothness, confidence=confidence)
    (out / "rates.md").write_text(_rates_markdown(fits, confidence))
    return {"csv": atomic_csv_write(out / "rates.csv", fits),
            "points": atomic_csv_write(out / "rates_points.csv", points),
            "markdown": out / "rates.md",
            "figure": plot_rates(fits, points, out / "rates.png")}


def main(argv: Sequence[str] | None = None) -> int:
    """``genbench-rates SWEEP_DIR``: the rate study's table and figure."""
    parser = argparse.ArgumentParser(prog="genbench-rates", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", help="the sweep folder (hydra.sweep.dir)")
    parser.add_argument("--out", default=None, help="output folder (default SWEEP_DIR/rates)")
    parser.add_argument("--x", default="auto", choices=["auto", *X_KEYS, "dims"],
                        help="the swept axis (default: whichever the sweep varies); dims: the "
                             "d* / D study of experiment=dims")
    parser.add_argument("--metrics", default="data_w2,data_w1,data_tv",
                        help="comma-separated metric keys to fit (default "
                             "data_w2,data_w1,data_tv)")
    parser.add_argument("--smoothness", type=float, default=2.0,
                        help="the smoothness s in the theory's exponents (default 2)")
    parser.add_argument("--confidence", type=float, default=0.95)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        if args.x == "dims":
            from genbench.report.rates.dims import analyse_dims

            paths = analyse_dims(args.sweep_dir, args.out)
        else:
            paths = analyse(args.sweep_dir, args.out, x=args.x,
                            metrics=[m.strip() for m in args.metrics.split(",")
                                     if m.strip()],
                            smoothness=args.smoothness, confidence=args.confidence)
    except (FileNotFoundError, ValueError) as err:
        print(f"genbench-rates: {err}", file=sys.stderr)
        return 2
    print(paths["markdown"].read_text())
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
