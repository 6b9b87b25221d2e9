"""The launcher of ``launcher=local``: Hydra's basic launcher, with seeds trained together.

Jobs run one after another in this process, exactly as with Hydra's basic launcher. Before
the first, every job's config is composed and the jobs that set ``batch_seeds: true`` and
differ only by ``seed`` are grouped (:func:`genbench.sweep.seed_groups.plan_groups`); the
first job of a group trains all its seeds as one batched model and writes each seed's
result into that seed's own folder, and the other jobs of the group return it
(:mod:`genbench.sweep.seed_groups`). Without ``batch_seeds`` nothing changes.

References:
    Hydra's basic launcher (``hydra._internal.core_plugins.basic_launcher``),
    https://hydra.cc/docs/advanced/plugins/overview/.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn
from omegaconf import OmegaConf

__all__ = ["SeedGroupLauncher"]


class SeedGroupLauncher(BasicLauncher):
    """Hydra's basic launcher; jobs that differ only by seed share one training when they
    set ``batch_seeds: true``."""

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        from genbench.sweep import seed_groups

        jobs = []
        for overrides in job_overrides:
            job_cfg = self.hydra_context.config_loader.load_sweep_config(self.config,
                                                                         list(overrides))
            if not OmegaConf.select(job_cfg, "batch_seeds", default=False):
                continue
            HydraConfig.instance().set_config(job_cfg)  # resolves ${hydra:job.override_dirname}
            folder = Path(str(job_cfg.hydra.sweep.dir)) / str(job_cfg.hydra.sweep.subdir)
            jobs.append((list(overrides), True, int(job_cfg.seed), str(folder)))
        groups = seed_groups.plan_groups(jobs)
        seed_groups.ACTIVE.clear()
        for group in groups:
            for folder in group.folders:
                seed_groups.ACTIVE[folder] = group
        try:
            return super().launch(job_overrides, initial_job_idx)
        finally:
            seed_groups.ACTIVE.clear()
