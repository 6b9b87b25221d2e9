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

import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from genbench.report.verdicts import Call, call_ties, overall_groups
from genbench.sweep.jobs import Job, as_number, load_jobs, scan_sweep

__all__ = ["BUDGET_METRICS", "COLUMNS", "RANK_METRIC", "Entry", "Job", "Leaderboard", "load_jobs"]

log = logging.getLogger(__name__)
RANK_METRIC = "data_w2_ratio"
# The costs of a row (genbench.core.budget): rows of a data set should spend the same.
BUDGET_METRICS = ("train_steps", "nfe")
# The tables' columns, where a sweep has them (the CSV files keep every metric).
COLUMNS = [("W2/floor", "data_w2_ratio"), ("W2", "data_w2"), ("floor", "data_w2_floor"),
           ("TV", "data_tv"), ("MMD/floor", "data_mmd_ratio"), ("NLL", "nll"),
           ("latent W2/floor", "latent_w2_ratio"), ("recon W2", "recon_w2"),
           ("train steps", "train_steps"), ("NFE", "nfe"), ("train s", "train_seconds"),
           ("sample s", "sample_seconds")]


@dataclass
class Entry:
    """One row of the leaderboard: a (data set, solver, variant) over its seeds."""

    dataset: str
    solver: str
    variant: str
    jobs: list[Job] = field(default_factory=list)
    rank: int | None = None
    # Rank group, declared best, seed-mean interval and ladder flags (report.verdicts).
    call: Call | None = None

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
    alpha: float = 0.05  # level of the rank groups (Holm over all pairs of a data set)
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
            self._call_ties(dataset, rows)
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
        mean = entry.mean_std(self.metric_for(entry.dataset))[0]
        return math.inf if math.isnan(mean) else mean

    def metric_for(self, dataset: str) -> str:
        """The ranking score of ``dataset``: the jobs' ``headline`` (chosen per kind of data
        set by the harness) unless another metric was asked for; else ``RANK_METRIC``."""
        if self.metric != RANK_METRIC:
            return self.metric
        names = {j.metrics.get("headline") for j in self.jobs if j.ok and j.dataset == dataset}
        return names.pop() if len(names) == 1 and None not in names else self.metric

    def _call_ties(self, dataset: str, rows: list[Entry]) -> None:
        """Rank groups over the rows' seeds (paired tests, Holm) and the ladder's flags."""
        metric = self.metric_for(dataset)
        jobs = [j for e in rows for j in e.ok]
        noise = [_noise_sd(j.metrics, metric) for j in jobs]
        noise = [v for v in noise if math.isfinite(v)]
        low, high = _interval_keys(metric)
        calls = call_ties(
            {e.label: {j.seed: as_number(j.metrics.get(metric)) for j in e.ok} for e in rows},
            solvers={e.label: e.solver for e in rows},
            noise_sd=float(np.median(noise)) if noise else 0.0, alpha=self.alpha,
            job_intervals={e.label: (as_number(e.ok[0].metrics.get(low)),
                                     as_number(e.ok[0].metrics.get(high)))
                           for e in rows if len(e.ok) == 1})
        for e in rows:
            e.call = calls[e.label]

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

    def unequal_budgets(self, dataset: str) -> list[str]:
        """The costs (``train_steps``, ``nfe``) that differ between the rows of ``dataset``.

        Reference rows that spend nothing (no training steps: the sanity ladder) are left
        out; an empty list means every solver was compared at the same budget.
        """
        rows = [e for e in self.entries if e.dataset == dataset and e.ok
                and e.mean_std("train_steps")[0] != 0]
        unequal = []
        for metric in BUDGET_METRICS:
            values = {round(e.mean_std(metric)[0], 6) for e in rows}
            values = {v for v in values if not math.isnan(v)}
            if len(values) > 1:
                unequal.append(metric)
        return unequal

    def overall(self) -> list[dict[str, Any]]:
        """Mean rank over data sets of each (solver, variant), best first, with its rank
        ``group`` and ``best`` (:func:`genbench.report.verdicts.overall_groups`) and the mean
        over data sets of ``metric`` where every data set is ranked by it."""
        ranks: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        scores: dict[tuple[str, str], list[float]] = defaultdict(list)
        for e in self.entries:
            if e.rank is not None:
                ranks[e.solver, e.variant][e.dataset] = e.rank
                scores[e.solver, e.variant].append(e.mean_std(self.metric)[0])
        labels = {key: f"{key[0]} ({key[1]})" if key[1] else key[0] for key in ranks}
        calls = overall_groups({labels[key]: r for key, r in ranks.items()}, alpha=self.alpha)
        rows = [{"solver": s, "variant": v, "mean_rank": float(np.mean(list(r.values()))),
                 "datasets": len(r), f"mean_{self.metric}": float(np.mean(scores[s, v])),
                 "group": calls[labels[s, v]].group, "best": calls[labels[s, v]].best}
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
            if e.call is not None:
                row |= {"group": e.call.group, "best": e.call.best,
                        "headline": self.metric_for(e.dataset), "score_mean": e.call.mean,
                        "score_low": e.call.low, "score_high": e.call.high,
                        "reference": e.call.reference,
                        "not_better_than_gaussian": e.call.not_better_than_gaussian}
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


def _interval_keys(metric: str) -> tuple[str, str]:
    """Where a job keeps its own interval of ``metric`` (genbench.eval.verdict)."""
    return f"{metric}_low", f"{metric}_high"


def _noise_sd(metrics: dict[str, Any], metric: str) -> float:
    """A score's draw-to-draw sd in its own units: the floor's sd over reference draws."""
    if metrics.get("headline") == metric:
        return as_number(metrics.get("headline_noise_sd"))
    if metric.endswith("_ratio"):
        base = metric[: -len("_ratio")]
        return as_number(metrics.get(f"{base}_floor_sd")) / as_number(metrics.get(f"{base}_floor"))
    return as_number(metrics.get(f"{metric}_floor_sd"))
