"""Several seeds of one job: one result per seed, trained together when ``batch_seeds``.

:func:`run_seeds` takes one job configuration and a list of seeds and writes, for each seed,
the ``results.json`` that :func:`genbench.run.pipeline.run` would write for that seed (same
fields, same config, same folder layout), so the report and ``resume`` see no difference.
With ``batch_seeds: false`` it is exactly a loop over ``run``. With ``batch_seeds: true`` the
seeds are prepared as solo runs prepare them (data split, encoder-decoder, solver built after
``torch.manual_seed(seed)``), trained as one batched model by
:func:`genbench.core.ensemble.fit_seeds` (one solo fit per seed for solvers that cannot
batch), and each is then sampled and scored from the random state its solo run would have had.

    from genbench.run.seeds import run_seeds
    run_seeds({"solver": {"name": "ddpm"}, "dataset": {"name": "moons"}, "batch_seeds": True},
              seeds=[0, 1, 2], output_dirs=["out/s0", "out/s1", "out/s2"])
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from genbench.core.config import RunConfig
from genbench.core.ensemble import fit_seeds, generator_state
from genbench.core.solver import DivergenceError
from genbench.run.pipeline import (
    _as_run_config,
    existing_result,
    failed_result,
    finish_job,
    job_header,
    prepare_job,
    run,
    write_result,
)
from genbench.run.tracking import make_tracker, run_name

__all__ = ["run_seeds"]

log = logging.getLogger(__name__)


class _Seed:
    """One seed's job: its config, folder, header, tracker, prepared inputs and RNG states."""

    def __init__(self, rc: RunConfig, out: Path):
        self.rc, self.out = rc, out
        self.header: dict[str, Any] = {"started": datetime.now(timezone.utc).isoformat(),
                                       "output_dir": str(out)} | job_header(rc)
        self.tracker: Any = None
        self.job: Any = None
        self.result: dict[str, Any] | None = None

    def prepare(self) -> None:
        self.tracker = make_tracker(self.rc.logger, config=asdict(self.rc),
                                    name=run_name(self.rc), output_dir=self.out)
        self.job = prepare_job(self.rc)
        # Where the solo run's fit would start: every generator, as it is now.
        self.cpu_state = torch.get_rng_state()
        self.np_state = np.random.get_state()
        self.fit_state = generator_state(self.job.device)

    def restore_after_fit(self, device_state: torch.Tensor) -> None:
        """The random state the solo run has when its fit returns (before sampling)."""
        torch.set_rng_state(self.cpu_state)
        np.random.set_state(self.np_state)
        if self.job.device.type == "cuda":
            torch.cuda.default_generators[self.job.device.index or 0].set_state(device_state)
        else:
            torch.set_rng_state(device_state)


def run_seeds(cfg: RunConfig | DictConfig | Mapping[str, Any], seeds: Sequence[int],
              output_dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Run ``cfg`` once per seed into ``output_dirs`` (one per seed); return the results."""
    if len(seeds) != len(output_dirs):
        raise ValueError(f"one output folder per seed: got {len(output_dirs)} for "
                         f"{len(seeds)} seeds")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    base = _as_run_config(cfg)
    if not base.batch_seeds:
        return [run(dataclasses.replace(base, seed=s), d) for s, d in zip(seeds, output_dirs,
                                                                          strict=True)]
    jobs = [_Seed(dataclasses.replace(base, seed=s), Path(d))
            for s, d in zip(seeds, output_dirs, strict=True)]
    for seed in jobs:
        previous = existing_result(seed.rc, seed.out, seed.header)
        if previous is not None:
            seed.result = previous
            continue
        try:
            seed.prepare()
        except Exception as err:
            seed.result = write_result(failed_result(seed.header, err), seed.out, seed.tracker)
    todo = [s for s in jobs if s.result is None]
    if todo:
        _train_and_finish(todo, base.progress)
    return [s.result for s in jobs]  # type: ignore[misc]


def _train_and_finish(todo: list[_Seed], progress: bool) -> None:
    try:
        stats = fit_seeds([s.job.solver for s in todo], [s.job.z_train for s in todo],
                          rng_states=[s.fit_state for s in todo],
                          callbacks=[s.tracker.log_train for s in todo], progress=progress,
                          log=log.info)
    except Exception as err:  # the whole batch failed: every seed records it
        for seed in todo:
            seed.result = write_result(failed_result(seed.header, err), seed.out, seed.tracker)
        return
    for seed, stat in zip(todo, stats, strict=True):
        try:
            if isinstance(stat, DivergenceError):
                raise stat
            seed.restore_after_fit(stat.pop("rng_state", generator_state(seed.job.device)))
            result = seed.header | finish_job(seed.rc, seed.out, seed.tracker, seed.job, stat)
            result["status"] = "ok"
        except Exception as err:
            result = failed_result(seed.header, err)
        seed.result = write_result(result, seed.out, seed.tracker)
