"""A sweep's leaderboard: every job's ``results.json`` aggregated into CSV, Markdown and HTML.

``genbench-report SWEEP_DIR`` (and the end-of-sweep callback, :mod:`genbench.sweep.callback`)
reads every ``results.json`` under a sweep folder and groups the jobs by data set, solver and
*variant* -- the hyper-parameters that vary within a (solver, data set) pair, other than the
seed. Each group gets the mean and standard deviation over its seeds of every metric, and the
groups of a data set are ranked by W2 over its sample-noise floor (``data_w2_ratio``: 1 means
as close to the target as a fresh target sample of the same size, so it reads the same at
every sample size and dimension). Failed jobs are listed with their errors. The report goes to
``SWEEP_DIR/report/``: ``leaderboard.csv``, ``runs.csv``, ``leaderboard.md`` and a
self-contained ``report.html`` (figures embedded) with a generated-vs-target scatter grid
(solver x data set), W2-vs-NFE curves when the sweep varies the number of function
evaluations, training-loss curves, and any ``rates*.png`` found in the sweep.

References:
    N. Fournier and A. Guillin, "On the rate of convergence in Wasserstein distance of the
    empirical measure", Probability Theory and Related Fields 162, 2015 (why W2 needs its floor).
"""

from __future__ import annotations

import argparse
import base64
import html
import logging
import math
import os
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from genbench.run.files import RESULTS_FILE
from genbench.run.storage import atomic_csv_write, atomic_write, read_json
from genbench.sweep.jobs import Job, as_number, load_jobs, scan_sweep

__all__ = ["RANK_METRIC", "Entry", "Job", "Leaderboard", "load_jobs", "main", "write_report"]

log = logging.getLogger(__name__)
RANK_METRIC = "data_w2_ratio"
REPORT_DIR = "report"
# The tables' columns, where a sweep has them (the CSV files keep every metric).
COLUMNS = [("W2/floor", "data_w2_ratio"), ("W2", "data_w2"), ("floor", "data_w2_floor"),
           ("TV", "data_tv"), ("MMD/floor", "data_mmd_ratio"), ("NLL", "nll"),
           ("latent W2/floor", "latent_w2_ratio"), ("recon W2", "recon_w2"), ("NFE", "nfe"),
           ("train s", "train_seconds"), ("sample s", "sample_seconds")]


@dataclass
class Entry:
    """One row of the leaderboard: a (data set, solver, variant) over its seeds."""

    dataset: str
    solver: str
    variant: str
    jobs: list[Job] = field(default_factory=list)
    rank: int | None = None

    @property
    def label(self) -> str:
        return f"{self.solver} ({self.variant})" if self.variant else self.solver

    @property
    def ok(self) -> list[Job]:
        return [j for j in self.jobs if j.ok]

    def mean_std(self, metric: str) -> tuple[float, float]:
        """Mean and sample standard deviation (n - 1) over the seeds that have ``metric``."""
        v = np.array([as_number(j.metrics.get(metric)) for j in self.ok])
        v = v[~np.isnan(v)]
        return (float(v.mean()) if v.size else math.nan,
                float(v.std(ddof=1)) if v.size > 1 else math.nan)


@dataclass
class Leaderboard:
    """All jobs of a sweep, grouped and ranked per data set by ``metric``."""

    root: Path
    jobs: list[Job]
    metric: str = RANK_METRIC
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # (results.json, why)
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # (ignored, kept)
    entries: list[Entry] = field(init=False)

    def __post_init__(self) -> None:
        groups: dict[tuple[str, str, str], Entry] = {}
        for job in self.jobs:
            key = (job.dataset, job.solver, job.variant)
            groups.setdefault(key, Entry(*key)).jobs.append(job)
        self.entries = []
        for dataset in self.datasets:
            rows = [e for e in groups.values() if e.dataset == dataset]
            score = {id(e): self._score(e) for e in rows}
            rows.sort(key=lambda e: (score[id(e)], e.solver, e.variant))
            for rank, entry in enumerate(r for r in rows if math.isfinite(score[id(r)])):
                entry.rank = rank + 1
            self.entries += rows

    @classmethod
    def load(cls, sweep_dir: str | Path, metric: str = RANK_METRIC) -> Leaderboard:
        """The leaderboard of every job under ``sweep_dir``."""
        sweep = scan_sweep(sweep_dir)
        return cls(Path(sweep_dir), sweep.jobs, metric, sweep.unreadable, sweep.duplicates)

    def counts(self) -> str:
        """``"3 jobs: 1 ok, 1 failed, 1 unreadable"`` (unreadable: results that cannot be read)."""
        total = len(self.jobs) + len(self.unreadable)
        text = (f"{total} jobs: {len(self.jobs) - len(self.failed)} ok, "
                f"{len(self.failed)} failed")
        if self.unreadable:
            text += f", {len(self.unreadable)} unreadable"
        if self.duplicates:
            text += f" ({len(self.duplicates)} duplicate runs counted once)"
        return text

    @cached_property
    def rerun_failures(self) -> list[Job]:
        """Finished jobs whose re-run failed: the result is kept, the failure beside it."""
        return [j for j in self.jobs if j.ok and j.rerun_error]

    def _score(self, entry: Entry) -> float:
        mean = entry.mean_std(self.metric)[0]
        return math.inf if math.isnan(mean) else mean

    @cached_property
    def datasets(self) -> list[str]:
        return sorted({j.dataset for j in self.jobs})

    @cached_property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs if not j.ok]

    @cached_property
    def metrics(self) -> list[str]:
        names = {k for j in self.jobs if j.ok for k, v in j.metrics.items()
                 if not math.isnan(as_number(v))}
        known = [m for _, m in COLUMNS if m in names]
        return known + sorted(names - set(known))

    def columns(self) -> list[tuple[str, str]]:
        return [(name, m) for name, m in COLUMNS if m in self.metrics]

    def overall(self) -> list[dict[str, Any]]:
        """Mean rank over data sets of each (solver, variant), best first."""
        ranks: dict[tuple[str, str], list[int]] = defaultdict(list)
        scores: dict[tuple[str, str], list[float]] = defaultdict(list)
        for e in self.entries:
            if e.rank is not None:
                ranks[e.solver, e.variant].append(e.rank)
                scores[e.solver, e.variant].append(self._score(e))
        rows = [{"solver": s, "variant": v, "mean_rank": float(np.mean(r)),
                 "datasets": len(r), f"mean_{self.metric}": float(np.mean(scores[s, v]))}
                for (s, v), r in ranks.items()]
        return sorted(rows, key=lambda r: (r["mean_rank"], -r["datasets"], r["solver"]))

    def rows(self) -> list[dict[str, Any]]:
        """The leaderboard as flat rows (CSV, wandb table)."""
        out = []
        for e in self.entries:
            row: dict[str, Any] = {"dataset": e.dataset, "rank": e.rank, "solver": e.solver,
                                   "variant": e.variant, "n_ok": len(e.ok),
                                   "n_failed": len(e.jobs) - len(e.ok),
                                   "seeds": " ".join(str(j.seed) for j in e.ok)}
            for metric in self.metrics:
                row[f"{metric}_mean"], row[f"{metric}_std"] = e.mean_std(metric)
            out.append(row)
        return out

    def job_rows(self) -> list[dict[str, Any]]:
        """One flat row per job (CSV, wandb table)."""
        return [{"folder": os.path.relpath(j.folder, self.root), "status": j.status,
                 "solver": j.solver, "dataset": j.dataset, "seed": j.seed,
                 "variant": j.variant}
                | {m: as_number(j.metrics.get(m)) for m in self.metrics} | {"error": j.error}
                for j in self.jobs]


def _stat_str(mean: float, std: float) -> str:
    def num(x: float, digits: int) -> str:
        if math.isnan(x):
            return "-"
        return f"{x:.0f}" if abs(x) >= 100 or x == int(x) else f"{x:.{digits}g}"

    return num(mean, 3) if math.isnan(std) or std == 0 else f"{num(mean, 3)} ± {num(std, 2)}"


def _tables(board: Leaderboard) -> list[tuple[str, list[str], list[list[str]], int | None]]:
    """(title, header, rows, index of the best row) of each table of the report."""
    columns = board.columns()
    tables = []
    for dataset in board.datasets:
        rows = []
        for e in (e for e in board.entries if e.dataset == dataset):
            seeds = f"{len(e.ok)}/{len(e.jobs)}"
            rows.append([str(e.rank or "-"), e.label]
                        + [_stat_str(*e.mean_std(m)) for _, m in columns] + [seeds])
        header = ["rank", "solver"] + [name for name, _ in columns] + ["seeds ok"]
        tables.append((dataset, header, rows, 0 if rows and rows[0][0] == "1" else None))
    overall = board.overall()
    if len(board.datasets) > 1 and overall:
        rows = [[f"{r['mean_rank']:.2f}", f"{r['solver']} ({r['variant']})" if r["variant"]
                 else r["solver"], str(r["datasets"]), _stat_str(r[f"mean_{board.metric}"],
                                                                 math.nan)] for r in overall]
        tables.append(("Overall: mean rank over data sets",
                       ["mean rank", "solver", "data sets", f"mean {board.metric}"], rows, 0))
    return tables


def _markdown(board: Leaderboard, figures: dict[str, Path], out: Path) -> str:
    lines = [f"# genbench leaderboard: `{board.root}`", "",
             f"{board.counts()}. Ranked per data set by `{board.metric}` "
             "(mean ± std over seeds; W2/floor = 1 is as close as a fresh target sample).", ""]
    for title, header, rows, _ in _tables(board):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
        lines.append("")
    if board.failed:
        lines += ["## Failed jobs", "", "| solver | data set | seed | variant | error | folder |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {j.solver} | {j.dataset} | {j.seed} | {j.variant} | "
                  f"{j.error.splitlines()[0][:160].replace('|', '/')} | "
                  f"`{os.path.relpath(j.folder, board.root)}` |" for j in board.failed]
        lines.append("")
    lines += _markdown_problems(board)
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{name}]({os.path.relpath(p, out)})" for name, p in figures.items()]
    return "\n".join(lines) + "\n"


def _markdown_problems(board: Leaderboard) -> list[str]:
    """Sections for results kept beside a failed re-run, and for unreadable results."""
    def cell(text: str) -> str:
        return text.splitlines()[0][:160].replace("|", "/") if text else ""

    lines: list[str] = []
    if board.rerun_failures:
        lines += ["## Re-runs that failed (the finished result is kept)", "",
                  "| solver | data set | seed | error of the re-run | folder |",
                  "|---|---|---|---|---|"]
        lines += [f"| {j.solver} | {j.dataset} | {j.seed} | {cell(j.rerun_error)} | "
                  f"`{os.path.relpath(j.folder, board.root)}` |" for j in board.rerun_failures]
        lines.append("")
    if board.unreadable:
        lines += ["## Unreadable results", "", "| file | why |", "|---|---|"]
        lines += [f"| `{os.path.relpath(p, board.root)}` | {cell(why)} |"
                  for p, why in board.unreadable]
        lines.append("")
    return lines


def _html_problems(board: Leaderboard) -> str:
    esc = html.escape
    parts = ""
    if board.rerun_failures:
        rows = "".join(f"<tr><td>{esc(j.solver)}</td><td>{esc(j.dataset)}</td>"
                       f"<td>{esc(str(j.seed))}</td><td>{esc(j.rerun_error[:300])}</td>"
                       f"<td>{esc(os.path.relpath(j.folder, board.root))}</td></tr>"
                       for j in board.rerun_failures)
        parts += ("<h2>Re-runs that failed (the finished result is kept)</h2><table class=text>"
                  "<tr><th>solver</th><th>data set</th><th>seed</th><th>error of the re-run</th>"
                  f"<th>folder</th></tr>{rows}</table>")
    if board.unreadable:
        rows = "".join(f"<tr><td>{esc(os.path.relpath(p, board.root))}</td><td>{esc(why)}</td>"
                       "</tr>" for p, why in board.unreadable)
        parts += (f"<h2>Unreadable results</h2><table class=text><tr><th>file</th><th>why</th>"
                  f"</tr>{rows}</table>")
    return parts


def _html(board: Leaderboard, figures: dict[str, Path]) -> str:
    esc = html.escape
    parts = [f"<h1>genbench leaderboard</h1><p class=meta><code>{esc(str(board.root))}</code>"
             f" &middot; {esc(board.counts())} &middot; ranked by <code>{esc(board.metric)}</code> "
             "(mean &plusmn; std over seeds; 1 = as close as a fresh target sample) &middot; "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC</p>"]
    for title, header, rows, best in _tables(board):
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        body = "".join(
            f"<tr{' class=best' if i == best else ''}>"
            + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for i, row in enumerate(rows))
        parts.append(f"<h2>{esc(title)}</h2><table><tr>{head}</tr>{body}</table>")
    if board.failed:
        items = "".join(
            f"<tr><td>{esc(j.solver)}</td><td>{esc(j.dataset)}</td><td>{esc(str(j.seed))}</td>"
            f"<td>{esc(j.variant)}</td><td><details><summary>{esc(j.error[:200])}</summary>"
            f"<pre>{esc(str((read_json(j.folder / RESULTS_FILE) or {}).get('traceback', '')))}"
            "</pre>"
            f"</details></td></tr>" for j in board.failed)
        parts.append("<h2>Failed jobs</h2><table class=text><tr><th>solver</th><th>data set</th>"
                     f"<th>seed</th><th>variant</th><th>error</th></tr>{items}</table>")
    parts.append(_html_problems(board))
    for name, path in figures.items():
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"<h2>{esc(name)}</h2><img alt='{esc(name)}' "
                     f"src='data:image/png;base64,{data}'>")
    style = ("body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
             "table{border-collapse:collapse;margin:8px 0 20px}"
             "th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;font-size:13px;"
             "white-space:nowrap}"
             "td:nth-child(2),th:nth-child(2){text-align:left}tr.best{background:#e4f4e4}"
             ".text td,.text th{text-align:left;white-space:normal}th{background:#f0f0f0}"
             ".meta{color:#555}img{max-width:100%;display:block}"
             "pre{font-size:11px;text-align:left;white-space:pre-wrap}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>genbench report</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")


def write_report(sweep: str | Path | Leaderboard, out_dir: str | Path | None = None, *,
                 metric: str = RANK_METRIC, plots: bool = True) -> dict[str, Path]:
    """Aggregate a sweep folder (or a loaded leaderboard) and write its report under
    ``out_dir`` (default ``<sweep>/report``); returns the written files by kind/caption."""
    board = sweep if isinstance(sweep, Leaderboard) else Leaderboard.load(sweep, metric)
    if len(board.failed) < len(board.jobs) and board.metric not in board.metrics:
        raise ValueError(f"metric {board.metric!r} is in no result; available: "
                         f"{', '.join(board.metrics)}")
    out = Path(out_dir) if out_dir is not None else board.root / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Path] = {}
    if plots:
        from genbench.report.figures import draw_figures

        figures = draw_figures(board, out)
    files = {"leaderboard_csv": atomic_csv_write(out / "leaderboard.csv", board.rows()),
             "runs_csv": atomic_csv_write(out / "runs.csv", board.job_rows())}
    markdown, page = _markdown(board, figures, out).encode(), _html(board, figures).encode()
    files["markdown"] = atomic_write(out / "leaderboard.md", lambda fh: fh.write(markdown))
    files["html"] = atomic_write(out / "report.html", lambda fh: fh.write(page))
    return files | figures


def main(argv: Sequence[str] | None = None) -> int:
    """``genbench-report SWEEP_DIR``: write the leaderboard and print it."""
    parser = argparse.ArgumentParser(prog="genbench-report", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", help="the sweep folder (hydra.sweep.dir)")
    parser.add_argument("--out", default=None, help="output folder (default: SWEEP_DIR/report)")
    parser.add_argument("--metric", default=RANK_METRIC, help="metric to rank by (lower wins)")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    args = parser.parse_args(argv)
    try:
        files = write_report(args.sweep_dir, args.out, metric=args.metric,
                             plots=not args.no_plots)
    except (OSError, ValueError) as err:  # missing folder, bad metric, read-only report folder
        print(f"genbench-report: {err}", file=sys.stderr)
        return 2
    text = files["markdown"].read_text()
    print(text.split("## Figures")[0].rstrip())
    print("\nwritten:\n" + "\n".join(f"  {p}" for p in files.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
