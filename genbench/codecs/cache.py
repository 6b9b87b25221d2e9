"""Fit once, cache by key: the encoder-decoder of a configuration, shared by every job.

It is fitted on a *source* data set (by default the target's own training split, drawn
with the codec's own ``seed`` so every run of a sweep shares it), cached on disk under a
hash of its configuration, then frozen and handed to every solver.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from genbench.codecs.base import CODECS, AutoEncoder, AutoencoderConfig
from genbench.core.config import validate
from genbench.core.storage import atomic_write
from genbench.data import build_dataset

__all__ = ["build_codec", "cache_key", "get_autoencoder"]

log = logging.getLogger(__name__)


def build_codec(config: AutoencoderConfig, data_dim: int) -> AutoEncoder:
    """An unfitted codec of the registered kind ``config.name`` for ``data_dim`` data."""
    return CODECS.get(config.name)(config, data_dim)


def cache_key(config: AutoencoderConfig, source: dict[str, Any], data_dim: int,
              data: torch.Tensor | None = None) -> str:
    """A stable hash of everything that determines the fitted encoder-decoder.

    ``data``: the source points; their hash keeps a file data set whose content changed
    (``dataset=file``, same path) from reusing the encoder fitted on the old content.
    """
    entries: dict[str, Any] = {"ae": dataclasses.asdict(config) | {"cache": None},
                               "source": source, "data_dim": data_dim, "version": 1}
    if data is not None:
        entries["data"] = hashlib.sha256(data.detach().cpu().numpy().tobytes()).hexdigest()
    blob = json.dumps(entries, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def get_autoencoder(
    config: dict[str, Any] | AutoencoderConfig,
    target_dataset: dict[str, Any],
    cache_dir: str | Path,
    device: str | torch.device = "cpu",
) -> tuple[AutoEncoder, dict[str, Any]]:
    """Load the cached encoder-decoder for ``config`` or fit, cache and return it.

    ``info`` reports ``cache_hit``, the cache ``path`` and ``key``, and fitting statistics.
    """
    cfg = config if isinstance(config, AutoencoderConfig) else validate(
        AutoencoderConfig, config, what="autoencoder")
    source = dict(cfg.source) if cfg.source is not None else dict(target_dataset)
    if cfg.n_source is not None:
        source["n_train"] = cfg.n_source
    splits = build_dataset(source, seed=cfg.seed)
    key = cache_key(cfg, source, splits.dim, splits.train)
    path = Path(cache_dir).expanduser() / "autoencoders" / f"{cfg.name}-{key}.pt"
    ae = build_codec(cfg, splits.dim)
    info: dict[str, Any] = {"key": key, "path": str(path), "source": source.get("name"),
                            "latent_dim": ae.latent_dim}
    if cfg.cache and path.exists():
        try:
            ae.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            log.info("autoencoder cache hit: %s (training skipped)", path)
            return ae.freeze().to(device), info | {"cache_hit": True}
        except Exception as err:  # a corrupt or stale cache file is refitted, not fatal
            log.warning("autoencoder cache %s unreadable (%s); refitting", path, err)
    torch.manual_seed(cfg.seed)
    stats = ae.fit(splits.train)
    if cfg.cache:
        state = ae.state_dict()
        atomic_write(path, lambda fh: torch.save(state, fh))
    log.info("autoencoder fitted in %.1fs and cached at %s", stats["train_seconds"], path)
    return ae.to(device), info | {"cache_hit": False, **stats}
