"""Fit once, cache by key: the encoder-decoder of a configuration, shared by every job.

It is fitted on a *source* data set (by default the target's own training split, drawn
with the codec's own ``seed`` so every run of a sweep shares it), cached on disk under a
hash of its configuration, then frozen and handed to every solver.

:func:`get_autoencoder` returns the same encoder, bit for bit, for one key whatever the job's
seed, the order the jobs run in or how many run at once:

- it is built *and* fitted inside :func:`torch.random.fork_rng`, seeded only by
  ``autoencoder.seed``, so neither its initial weights nor its mini-batches depend on the
  job's seed (which the key leaves out), and the job's own random stream is untouched;
- parallel jobs serialise on an exclusive :func:`fcntl.flock` on ``<entry>.lock`` beside the
  cache entry: the first fits and writes, the others wait, then load what it wrote;
- weights are checked finite before they are cached (a non-finite fit fails the job, naming
  the settings) and after they are loaded (a poisoned entry is refitted, with a warning);
- an unreadable entry (garbage, truncated, another model's) is refitted with a warning that
  names the file; a cache folder that cannot be written is a warning, and the job runs with
  an uncached fit (an existing readable entry there is still used).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from genbench.codecs.base import CODECS, AutoEncoder, AutoencoderConfig
from genbench.core.config import ConfigError, validate
from genbench.core.storage import atomic_write, exclusive_lock
from genbench.data import build_dataset

__all__ = [
    "build_codec", "cache_key", "check_fittable", "fit_autoencoder", "get_autoencoder",
    "min_points",
]

log = logging.getLogger(__name__)
DEFAULT_N_TRAIN = 20000  # DatasetConfig.n_train, read here without building the data set


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


def min_points(config: AutoencoderConfig) -> int:
    """The fewest source points that give a finite fit of ``config``.

    A standard deviation needs two points (standardised latents, the MLP's input scaling);
    PCA needs more points than components.
    """
    need = 2 if config.standardize or config.name == "mlp" else 1
    if config.name == "pca":
        need = max(need, (config.latent_dim or 2) + 1)
    return need


def check_fittable(config: AutoencoderConfig, n_points: int, key: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` when ``n_points`` cannot fit ``config``."""
    need = min_points(config)
    if n_points < need:
        raise ConfigError(
            f"{key}={n_points} is too small to fit the {config.name} encoder-decoder: it needs "
            f"at least {need} points (standardize={config.standardize}"
            + (f", latent_dim={config.latent_dim or 2}" if config.name == "pca" else "") + ")")


def source_of(cfg: AutoencoderConfig, target_dataset: dict[str, Any]) -> tuple[dict, str]:
    """The data set the encoder is fitted on, and the config key that sets its size."""
    source = dict(cfg.source) if cfg.source is not None else dict(target_dataset)
    if cfg.n_source is not None:
        source["n_train"] = cfg.n_source
        return source, "autoencoder.n_source"
    return source, ("autoencoder.source.n_train" if cfg.source is not None
                    else "dataset.n_train")


def _is_finite(ae: AutoEncoder) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in ae.state_dict().values()
               if t.is_floating_point())


def fit_autoencoder(cfg: AutoencoderConfig, train: torch.Tensor) -> tuple[AutoEncoder, dict]:
    """Build and fit under a private RNG seeded by ``cfg.seed`` only; fail if non-finite."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        ae = build_codec(cfg, train.shape[1])
        stats = ae.fit(train)
    if not _is_finite(ae):
        raise FloatingPointError(
            f"the {cfg.name} encoder-decoder fitted on {len(train)} points has non-finite "
            f"weights (autoencoder.lr={cfg.lr}, steps={cfg.steps}); it was not cached. "
            "Lower autoencoder.lr or use more source points.")
    return ae, stats


def _load(path: Path, cfg: AutoencoderConfig, dim: int) -> AutoEncoder | None:
    """The cached encoder at ``path``; ``None`` (with a warning naming why) if unusable."""
    if not path.exists():
        return None
    ae = build_codec(cfg, dim)
    try:
        with warnings.catch_warnings():  # torch's unpickler warnings are noise here
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
        ae.load_state_dict(state)
    except Exception as err:  # noqa: BLE001 - garbage, truncated or another model's file
        # torch's own message advises weights_only=False: never the right fix for a cache.
        log.warning("autoencoder cache file %s is not a readable state dict of this encoder "
                    "(%s); refitting it", path, type(err).__name__)
        return None
    if not _is_finite(ae):
        log.warning("autoencoder cache file %s holds non-finite weights; refitting it", path)
        return None
    return ae.freeze()


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
    source, size_key = source_of(cfg, target_dataset)
    check_fittable(cfg, int(source.get("n_train", DEFAULT_N_TRAIN)), size_key)
    splits = build_dataset(source, seed=cfg.seed)
    check_fittable(cfg, len(splits.train), size_key)  # a finite data set may hold fewer
    key = cache_key(cfg, source, splits.dim, splits.train)
    path = Path(cache_dir).expanduser() / "autoencoders" / f"{cfg.name}-{key}.pt"
    info: dict[str, Any] = {"key": key, "path": str(path), "source": source.get("name")}

    def done(ae: AutoEncoder, **extra: Any) -> tuple[AutoEncoder, dict[str, Any]]:
        return ae.to(device), info | {"latent_dim": ae.latent_dim} | extra

    if not cfg.cache:
        ae, stats = fit_autoencoder(cfg, splits.train)
        return done(ae, cache_hit=False, **stats)
    with exclusive_lock(path) as lock_error:
        writable = lock_error is None
        if not writable:
            log.warning("autoencoder cache folder %s is not writable (%s); running uncached",
                        path.parent, lock_error.strerror or lock_error)
        ae = _load(path, cfg, splits.dim)
        if ae is not None:
            log.info("autoencoder cache hit: %s (training skipped)", path)
            return done(ae, cache_hit=True)
        ae, stats = fit_autoencoder(cfg, splits.train)
        if writable:
            try:
                state = ae.state_dict()
                atomic_write(path, lambda fh: torch.save(state, fh))
                log.info("autoencoder fitted in %.1fs and cached at %s",
                         stats["train_seconds"], path)
            except OSError as err:
                log.warning("autoencoder cache %s not writable (%s); running uncached",
                            path, err.strerror or err)
                writable = False
        return done(ae, cache_hit=False, cached=writable, **stats)
