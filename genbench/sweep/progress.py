"""The sweep's progress bar: jobs done out of the sweep's size, with tqdm's ETA.

The size is counted from the sweep's overrides (``hydra.sweeper.params``, then the command
line's, which win): the product of the lengths of the choice and range sweeps. A ``glob``
needs the config's options to count, so such a sweep gets a bar without a total (jobs done
and rate, no ETA). The bar lives in this process only: the callback object is copied into
launcher workers (joblib, SLURM), which find no bar and skip it, so a bar is drawn only with
the basic launcher, where jobs run here, one after another.
"""

from __future__ import annotations

import os
from typing import Any

from omegaconf import DictConfig, OmegaConf

from genbench.core.progress import bar

__all__ = ["advance_sweep_bar", "close_sweep_bar", "open_sweep_bar", "sweep_size"]

# By id of the callback: the callback must stay picklable for launchers.
_BARS: dict[int, list[Any]] = {}  # id -> [pid, bar, failed jobs]


def sweep_size(config: DictConfig) -> int | None:
    """The number of jobs of the sweep ``config`` describes, or ``None`` if not countable."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.select(config, "hydra.sweeper.params")
    params = OmegaConf.to_container(params) if params is not None else {}
    items = [f"{k}={v}" for k, v in params.items()]
    items += list(OmegaConf.select(config, "hydra.overrides.task") or [])
    counts: dict[str, int | None] = {}
    try:
        for override in OverridesParser.create().parse_overrides(items):
            count = 1
            if override.is_sweep_override():
                try:
                    count = len(list(override.sweep_string_iterator()))
                except Exception:  # noqa: BLE001 - glob: needs the config loader
                    count = None
            counts[override.key_or_group] = count
    except Exception:  # noqa: BLE001 - a bar is never worth failing a sweep
        return None
    total = 1
    for count in counts.values():
        if count is None:
            return None
        total *= count
    return total


def open_sweep_bar(owner: object, config: DictConfig) -> None:
    """A bar over the sweep's jobs, owned by ``owner`` (off with ``progress=false``)."""
    enabled = bool(OmegaConf.select(config, "progress", default=True))
    progress = bar(sweep_size(config), desc="sweep", unit="job", enabled=enabled, leave=True)
    _BARS[id(owner)] = [os.getpid(), progress, 0]


def advance_sweep_bar(owner: object, ok: bool) -> None:
    """One more job done (``ok`` or failed), when the bar lives in this process."""
    entry = _BARS.get(id(owner))
    if entry is None or entry[0] != os.getpid():
        return
    progress = entry[1]
    if not ok:
        entry[2] += 1
        progress.set_postfix(failed=entry[2], refresh=False)
    progress.update(1)


def close_sweep_bar(owner: object) -> None:
    entry = _BARS.pop(id(owner), None)
    if entry is not None and entry[0] == os.getpid():
        entry[1].close()
