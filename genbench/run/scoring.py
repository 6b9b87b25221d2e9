"""The steps a job shares with re-scoring and with scoring samples made elsewhere.

:func:`load_inputs` builds the data splits and the shared encoder-decoder exactly as a job
does (same seeding, same cache), :func:`draw` samples a solver with the job's sampler
generator (``torch.Generator`` seeded with the job's seed), and :func:`score` runs the
harness, writes ``samples.npz`` and the scatter plot. The pipeline, ``genbench-eval RUN_DIR``
and ``genbench-eval --samples`` all go through these functions, so the same samples get the
same numbers whichever path produced them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from genbench.codecs import AutoEncoder, get_autoencoder
from genbench.core.progress import progress_scope
from genbench.core.storage import atomic_npz_save
from genbench.data import DataSplits, build_dataset
from genbench.data.validation import validation_splits
from genbench.eval.harness import Evaluation
from genbench.run.files import SAMPLES_FILE

if TYPE_CHECKING:
    from genbench.core.config import RunConfig
    from genbench.core.solver import Solver

__all__ = ["Inputs", "draw", "load_inputs", "score"]


@dataclass
class Inputs:
    """A job's data splits and its frozen encoder-decoder (with its cache info)."""

    splits: DataSplits
    ae: AutoEncoder
    ae_info: dict[str, Any]
    device: torch.device


def load_inputs(rc: RunConfig, device: torch.device) -> Inputs:
    """The splits and the encoder-decoder of the job ``rc`` (seeded as the job seeds them)."""
    torch.manual_seed(rc.seed)
    np.random.seed(rc.seed)
    splits = build_dataset(rc.dataset, seed=rc.seed)
    if rc.eval.split == "validation":  # tuning: the test points are dropped here, unread
        splits = validation_splits(splits)
    ae, ae_info = get_autoencoder(rc.autoencoder, rc.dataset, rc.cache_dir, device)
    return Inputs(splits=splits, ae=ae, ae_info=ae_info, device=device)


def draw(rc: RunConfig, solver: Solver, inputs: Inputs) -> tuple[Tensor, Tensor, float]:
    """``(x_gen, z_gen, sample_seconds)``: as many samples as test points, seeded by ``rc.seed``."""
    device = inputs.device
    generator = torch.Generator(device=device).manual_seed(rc.seed)
    with progress_scope(rc.progress):
        start = time.perf_counter()
        z_gen = solver.sample(len(inputs.splits.test), generator=generator)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return inputs.ae.decode(z_gen), z_gen, seconds


def score(rc: RunConfig, inputs: Inputs, out: Path, *, x_gen: Tensor, z_gen: Tensor,
          solver: Solver | None, title: str) -> tuple[dict[str, Any], dict[str, Path]]:
    """The harness's metrics for generated samples, with ``samples.npz`` (and the scatter
    plot when ``eval.plot``) written to ``out``; returns ``(metrics, figures)``."""
    splits, ae = inputs.splits, inputs.ae
    with progress_scope(rc.progress):
        metrics = Evaluation(rc.eval, cache_dir=rc.cache_dir)(
            x_gen=x_gen, z_gen=z_gen, splits=splits, ae=ae, solver=solver)
    atomic_npz_save(out / SAMPLES_FILE, x_gen=x_gen, z_gen=z_gen, x_test=splits.test,
                    z_test=ae.encode(splits.test.to(inputs.device)))
    figures: dict[str, Path] = {}
    if rc.eval.plot:
        from genbench.run.plots import scatter_samples

        figures["samples"] = scatter_samples(x_gen, splits.test, out / "samples.png", title=title)
    return metrics, figures
