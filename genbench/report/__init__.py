"""Reading finished sweeps: the leaderboard model (leaderboard), its Markdown and HTML pages
(render), its figures (figures), ``genbench-report`` (write) and the rate studies
(genbench.report.rates). Needs no torch at import."""

from genbench.report.leaderboard import RANK_METRIC, Entry, Job, Leaderboard, load_jobs
from genbench.report.write import main, write_report

__all__ = ["RANK_METRIC", "Entry", "Job", "Leaderboard", "load_jobs", "main", "write_report"]
