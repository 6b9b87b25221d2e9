"""Score samples made by any generator (torchcfm, diffusers, a paper's release) like a job.

:func:`read_samples` loads an ``(n, d)`` array in data space from ``.npy``, ``.npz`` (the
array ``x_gen`` a genbench job writes, the only array of the file, or ``key``) or ``.pt`` (a
tensor, or a dict holding ``x_gen`` or ``key``). :func:`score_external` scores it against the
data set of ``rc`` through the job's own steps (:mod:`genbench.run.scoring`): the same
splits, encoder-decoder, floors and intervals, and a ``results.json`` in the job's schema
(no training or sampling times; ``nfe`` unknown), so ``genbench-report`` lists it beside
the built-in solvers.
"""

from __future__ import annotations

import hashlib
import traceback
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genbench.core.config import RunConfig
from genbench.core.solver import DataError
from genbench.run.pipeline import environment, resolve_device, write_result
from genbench.run.scoring import load_inputs, score

__all__ = ["SAMPLE_SUFFIXES", "read_samples", "score_external"]

SAMPLE_SUFFIXES = (".npy", ".npz", ".pt", ".pth")
DEFAULT_KEY = "x_gen"


def _pick(arrays: dict[str, Any], key: str | None, path: Path) -> Any:
    if key is not None:
        if key not in arrays:
            raise DataError(f"{path} has no array {key!r}; it holds: {', '.join(arrays)}")
        return arrays[key]
    if DEFAULT_KEY in arrays:
        return arrays[DEFAULT_KEY]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    raise DataError(f"{path} holds several arrays ({', '.join(arrays)}) and none is named "
                    f"{DEFAULT_KEY!r}: choose one with --key")


def read_samples(path: str | Path, key: str | None = None) -> Tensor:
    """The samples in ``path`` as a float32 tensor of shape ``(n, d)``; clear errors else."""
    path = Path(path)
    if path.suffix not in SAMPLE_SUFFIXES:
        raise DataError(f"samples file {path} must end in one of {', '.join(SAMPLE_SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"samples file not found: {path}")
    if path.suffix == ".npy":
        data: Any = np.load(path, allow_pickle=False)
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            data = _pick({k: archive[k] for k in archive.files}, key, path)
    else:
        data = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(data, dict):
            data = _pick(data, key, path)
    x = torch.as_tensor(np.asarray(data) if not isinstance(data, Tensor) else data)
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"samples in {path} must have shape (n, d) with n >= 1, "
                        f"got {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.double()
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise DataError(f"samples in {path}: {bad} row(s) with NaN or infinite values")
    return x.float()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def score_external(rc: RunConfig, samples: str | Path, out_dir: str | Path, *,
                   name: str, key: str | None = None) -> dict[str, Any]:
    """Score the samples in ``samples`` against ``rc``'s data set; writes ``results.json``.

    A file that cannot be read, or of the wrong dimension, raises before any scoring.
    """
    path, out = Path(samples), Path(out_dir)
    x = read_samples(path, key)
    device = resolve_device(rc.device)
    inputs = load_inputs(rc, device)
    dim = inputs.splits.dim
    if x.shape[1] != dim:
        raise DataError(f"samples in {path} have {x.shape[1]} columns but data set "
                        f"{rc.dataset.get('name')!r} is {dim}-dimensional: samples must be in "
                        "data space, shape (n, d)")
    rc.solver = {"name": name}
    header: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(), "output_dir": str(out),
        "solver": name, "dataset": rc.dataset.get("name"),
        "autoencoder": rc.autoencoder.get("name"), "seed": rc.seed, "config": asdict(rc),
        "samples": {"path": str(path.resolve()), "sha256": _digest(path), "key": key,
                    "n": len(x)},
    }
    try:
        x_gen = x.to(device)
        z_gen = inputs.ae.encode(x_gen)
        metrics, _ = score(rc, inputs, out, x_gen=x_gen, z_gen=z_gen, solver=None,
                           title=f"{name}-{rc.dataset.get('name')}")
        metrics |= {"nfe": None, "train_seconds": None, "sample_seconds": None,
                    "n_eval": len(x), "n_train": len(inputs.splits.train),
                    "latent_dim": inputs.ae.latent_dim}
        result = header | {"metrics": metrics, "autoencoder_info": inputs.ae_info,
                           "device": str(device), "environment": environment(),
                           "status": "ok"}
    except Exception as err:
        result = header | {"status": "failed", "error_type": type(err).__name__,
                           "error": str(err), "traceback": traceback.format_exc()}
    result["finished"] = datetime.now(timezone.utc).isoformat()
    return write_result(result, out)  # a failure never replaces a finished score
