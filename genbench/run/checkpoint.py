"""A job's fitted solver on disk (``model.pt``), and rebuilding it with other sampler settings.

The checkpoint holds what :meth:`Solver.load` reads (``name``, ``dim``, ``config``,
``state_dict``) plus what ties it to its job: the encoder-decoder's cache key (a re-scored
checkpoint must see the same latent space), the data set and the seed. It is written
atomically beside ``results.json``.

Only the keys a solver declares in ``Solver.sampling_keys`` (read when sampling or scoring,
never by ``fit``) may change when a checkpoint is rebuilt: any other key would describe a
model that was not trained, so :func:`check_sampling_overrides` refuses it by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from genbench.core.config import ConfigError, validate
from genbench.core.solver import Solver, get_solver_class
from genbench.core.storage import atomic_write

__all__ = ["CHECKPOINT_FORMAT", "check_sampling_overrides", "load_solver", "read_checkpoint",
           "save_checkpoint"]

CHECKPOINT_FORMAT = 1
_REQUIRED = ("name", "dim", "config", "state_dict")


def save_checkpoint(solver: Solver, path: str | Path, *, solver_name: str,
                    autoencoder_key: str | None, job: Mapping[str, Any]) -> Path:
    """Write ``solver`` (weights, config, name) with its job's identity to ``path``, atomically.

    ``job`` holds the parts of the run config that fixed the training data (dataset,
    autoencoder, seed); they are kept for the reader, never trusted over ``results.json``.
    """
    from genbench import __version__

    payload = {
        "format": CHECKPOINT_FORMAT,
        "name": solver_name,
        "dim": solver.dim,
        "config": dataclasses.asdict(solver.config),
        "state_dict": {k: v.detach().cpu() for k, v in solver.state_dict().items()},
        "autoencoder_key": autoencoder_key,
        "job": dict(job),
        "genbench_version": __version__,
    }
    return atomic_write(Path(path), lambda fh: torch.save(payload, fh))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The payload at ``path``; a clear error when it is missing or not a genbench checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}: jobs write model.pt beside results.json since "
            "checkpoints were added; re-run the job to create it")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    missing = [k for k in _REQUIRED if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise ValueError(f"{path} is not a genbench checkpoint (missing {missing})")
    return payload


def check_sampling_overrides(solver_cls: type[Solver], overrides: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` when ``overrides`` touch a key that changes training."""
    allowed = tuple(solver_cls.sampling_keys)
    fields = {f.name for f in dataclasses.fields(solver_cls.Config)}
    for key in overrides:
        if key in allowed:
            continue
        name = solver_cls.name or solver_cls.__name__
        what = "changes training" if key in fields else "is not a key of this solver"
        keys = ", ".join(f"solver.{k}" for k in allowed) or "none (its sampler is part of fit)"
        raise ConfigError(
            f"solver.{key} {what}: re-scoring reuses the trained {name!r} model, so only its "
            f"sampling keys can change: {keys}. To change training, run genbench again.")


def load_solver(payload: Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
                device: str | torch.device = "cpu") -> Solver:
    """Rebuild the checkpoint's solver with sampling ``overrides`` applied to its config."""
    solver_cls = get_solver_class(payload["name"])
    overrides = dict(overrides or {})
    check_sampling_overrides(solver_cls, overrides)
    config = validate(solver_cls.Config, dict(payload["config"]) | overrides,
                      what=f"solver {payload['name']!r}")
    solver = solver_cls(int(payload["dim"]), config)
    solver.load_state_dict(payload["state_dict"])
    return solver.to(device)
