"""``genbench-report``: a sweep's leaderboard written as CSV, Markdown and HTML, with figures.

``genbench-report SWEEP_DIR`` (and the end-of-sweep callback, :mod:`genbench.sweep.callback`)
loads the sweep (:mod:`genbench.report.leaderboard`) and writes to ``SWEEP_DIR/report/``:
``leaderboard.csv``, ``runs.csv``, ``leaderboard.md`` and a self-contained ``report.html``
(:mod:`genbench.report.render`, figures from :mod:`genbench.report.figures` embedded).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from genbench.core.storage import atomic_csv_write, atomic_write
from genbench.report.leaderboard import RANK_METRIC, Leaderboard
from genbench.report.render import html_page, markdown

__all__ = ["REPORT_DIR", "main", "write_report"]

REPORT_DIR = "report"


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
    text, page = markdown(board, figures, out).encode(), html_page(board, figures).encode()
    files["markdown"] = atomic_write(out / "leaderboard.md", lambda fh: fh.write(text))
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
