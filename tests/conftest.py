"""Shared fixtures: an isolated cache folder and single-threaded torch for stable timings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
# Session fixtures for the real sweep engines (SLURM, Ray): slurm_cluster, ray_cluster, local_six
pytest_plugins = ["tests.engines"]


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    """Every test writes autoencoder and floor caches under a temporary folder."""
    cache = tmp_path_factory.mktemp("genbench-cache")
    old = os.environ.get("GENBENCH_CACHE_DIR")
    os.environ["GENBENCH_CACHE_DIR"] = str(cache)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    yield cache
    if old is None:
        os.environ.pop("GENBENCH_CACHE_DIR", None)
    else:
        os.environ["GENBENCH_CACHE_DIR"] = old


@pytest.fixture
def smoke_overrides() -> list[str]:
    """Hydra overrides for a job that runs in a few seconds."""
    return ["experiment=smoke", "progress=false", "solver.sample_steps=50", "eval.plot=false"]
