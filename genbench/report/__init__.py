"""Reading finished sweeps: the leaderboard (Markdown, HTML, CSV), its figures and the rate
studies (genbench.report.rates). Needs no torch at import."""

from genbench.report.leaderboard import (
    RANK_METRIC,
    Entry,
    Job,
    Leaderboard,
    load_jobs,
    main,
    write_report,
)

__all__ = [
    "Entry",
    "Job",
    "Leaderboard",
    "RANK_METRIC",
    "load_jobs",
    "main",
    "write_report",
]
