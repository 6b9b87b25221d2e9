"""Seeds of a sweep trained together: ``genbench -m seed=0,1,2 batch_seeds=true ...``.

A Hydra sweep launches one job per seed, so seeds can only share a training when the launcher
knows which jobs belong together. :class:`SeedGroupLauncher` (``launcher=local``, the
default; Hydra's basic launcher plus this) composes every job's config before running any,
and groups the jobs that set ``batch_seeds: true`` and differ only by ``seed``
(:func:`plan_groups`). The jobs then run one after another as with the basic launcher, each
with its own folder, ``.hydra/`` record, log line and result; the first job of a group calls
:func:`genbench.run.seeds.run_seeds` for all its seeds (one batched training, one
``results.json`` per seed folder, the folders the sweep would have used), and the group's
other jobs return their seed's result from it (:func:`run_in_group`), so the report and
``resume`` see an ordinary sweep.

With another launcher (joblib, SLURM, Ray: jobs in separate processes) each seed trains on
its own, and the job says so in its log (``batch_seeds`` is result-neutral either way).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ACTIVE", "SeedGroup", "plan_groups", "run_in_group"]

log = logging.getLogger("genbench.sweep")


@dataclass
class SeedGroup:
    """Jobs of one sweep that differ only by seed: their seeds and folders, in launch order."""

    seeds: list[int]
    folders: list[str]
    results: dict[str, Any] = field(default_factory=dict)  # folder -> result (after the run)
    error: BaseException | None = None


# Folder (resolved) -> its group, for the launch in progress (set by the launcher).
ACTIVE: dict[str, SeedGroup] = {}


def _key(folder: str | Path) -> str:
    return str(Path(folder).resolve())


def plan_groups(jobs: Sequence[tuple[Sequence[str], bool, int, str]]) -> list[SeedGroup]:
    """Groups of ``jobs`` = ``(overrides, batch_seeds, seed, folder)`` that set
    ``batch_seeds`` and whose overrides are equal but for ``seed=``; groups of one job and
    jobs without ``batch_seeds`` are left out."""
    by_rest: dict[tuple[str, ...], SeedGroup] = {}
    for overrides, batch, seed, folder in jobs:
        if not batch:
            continue
        rest = tuple(sorted(o for o in overrides if o.lstrip("+~").partition("=")[0] != "seed"))
        group = by_rest.setdefault(rest, SeedGroup([], []))
        if seed in group.seeds:  # the same job twice: nothing to share
            continue
        group.seeds.append(int(seed))
        group.folders.append(_key(folder))
    return [g for g in by_rest.values() if len(g.seeds) > 1]


def run_in_group(cfg: Any, output_dir: str | Path) -> dict[str, Any] | None:
    """This job's result from its seed group (training the whole group on its first job),
    or None when the job belongs to no group of the launch in progress."""
    group = ACTIVE.get(_key(output_dir))
    if group is None:
        return None
    if not group.results and group.error is None:
        from genbench.run.seeds import run_seeds

        log.info("training seeds %s together (batch_seeds)", group.seeds)
        try:
            done = run_seeds(cfg, group.seeds, group.folders)
            group.results = dict(zip(group.folders, done, strict=True))
        except Exception as err:  # every job of the group reports it
            group.error = err
    if group.error is not None:
        raise group.error
    return group.results[_key(output_dir)]
