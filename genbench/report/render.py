"""The leaderboard as text: its tables, a Markdown page and a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import math
import os
from datetime import datetime, timezone
from pathlib import Path

from genbench.core.storage import read_json
from genbench.report.leaderboard import Entry, Leaderboard
from genbench.run.files import RESULTS_FILE

__all__ = ["html_page", "markdown", "tables"]


def _stat_str(mean: float, std: float) -> str:
    def num(x: float, digits: int) -> str:
        if math.isnan(x):
            return "-"
        return f"{x:.0f}" if abs(x) >= 100 or x == int(x) else f"{x:.{digits}g}"

    return num(mean, 3) if math.isnan(std) or std == 0 else f"{num(mean, 3)} ± {num(std, 2)}"


def _call_cells(e: Entry) -> list[str]:
    """Group, the seed-mean with its interval, and the ladder's note of one row."""
    c = e.call
    if c is None:
        return ["-", "-", ""]
    if math.isnan(c.mean):
        score = "-"
    elif math.isnan(c.low):
        score = f"{c.mean:.4g}"
    else:
        score = f"{c.mean:.4g} [{c.low:.4g}, {c.high:.4g}]"
    note = ("reference (ladder)" if c.reference else
            "not better than gaussian" if c.not_better_than_gaussian else "")
    if c.best:
        note = (note + "; " if note else "") + "best (significant)"
    return [str(c.group) if c.group is not None else "-", score, note]


def tables(board: Leaderboard) -> list[tuple[str, list[str], list[list[str]], int | None]]:
    """(title, header, rows, index of the best row) of each table of the report."""
    columns = board.columns()
    tables = []
    for dataset in board.datasets:
        rows = []
        entries = [e for e in board.entries if e.dataset == dataset]
        for e in entries:
            seeds = f"{len(e.ok)}/{len(e.jobs)}"
            rows.append([str(e.rank or "-"), e.label]
                        + [_stat_str(*e.mean_std(m)) for _, m in columns] + [seeds]
                        + _call_cells(e))
        header = (["rank", "solver"] + [name for name, _ in columns] + ["seeds ok"]
                  + ["group", f"{board.metric_for(dataset)} [95% CI]", "note"])
        unequal = board.unequal_budgets(dataset)
        title = f"{dataset} (unequal budgets: {', '.join(unequal)})" if unequal else dataset
        # A best is marked only when it is significantly better than the next (rank groups).
        best = next((i for i, e in enumerate(entries) if e.call is not None and e.call.best),
                    None)
        tables.append((title, header, rows, best))
    overall = board.overall()
    if len(board.datasets) > 1 and overall:
        rows = [[f"{r['mean_rank']:.2f}", f"{r['solver']} ({r['variant']})" if r["variant"]
                 else r["solver"], str(r["datasets"]), _stat_str(r[f"mean_{board.metric}"],
                                                                 math.nan),
                 "-" if r["group"] is None else str(r["group"]),
                 "best (significant)" if r["best"] else ""] for r in overall]
        # Marked only when significantly better than the next (rank groups over data sets).
        best = next((i for i, r in enumerate(overall) if r["best"]), None)
        tables.append(("Overall: mean rank over data sets",
                       ["mean rank", "solver", "data sets", f"mean {board.metric}", "group",
                        "note"], rows, best))
    return tables


def markdown(board: Leaderboard, figures: dict[str, Path], out: Path) -> str:
    lines = [f"# genbench leaderboard: `{board.root}`", "",
             f"{board.counts()}. Ranked per data set by `{board.metric}` "
             "(mean ± std over seeds; W2/floor = 1 is as close as a fresh target sample).",
             "",
             "Per data set the headline score (data_w2_ratio or data_mmd2) is shown as the mean "
             "over seeds [95% interval]; solvers in one *group* are not distinguishable (paired "
             f"tests by seed, Holm, alpha = {board.alpha}); a best is named only when "
             "significantly better than the next; ladder rows are references. The overall "
             "table's groups compare mean ranks over the data sets every row ran on "
             "(Demšar 2006; Holm) (docs/verdicts.md).", ""]
    for title, header, rows, _ in tables(board):
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


def html_page(board: Leaderboard, figures: dict[str, Path]) -> str:
    """The self-contained report page; every value from a result or a path is escaped."""
    esc = html.escape
    parts = [f"<h1>genbench leaderboard</h1><p class=meta><code>{esc(str(board.root))}</code>"
             f" &middot; {esc(board.counts())} &middot; ranked by <code>{esc(board.metric)}</code> "
             "(mean &plusmn; std over seeds; 1 = as close as a fresh target sample) &middot; "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC</p>"]
    for title, header, rows, best in tables(board):
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
