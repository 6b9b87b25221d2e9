"""The shared encoder-decoder's contract: its config, the :class:`AutoEncoder` base class and
the codec registry (``identity`` and ``pca`` in :mod:`genbench.codecs.linear`, ``mlp`` in
:mod:`genbench.codecs.mlp`, plugins in the entry-point group ``genbench.codecs``).

It is fitted once on a *source* data set (by default the target's own training split, drawn
with the autoencoder's own ``seed`` so every run of a sweep shares it), cached on disk under
a hash of its configuration, then frozen and handed to every solver. Latents are
standardised (per-coordinate mean and scale of the source latents) so every solver sees
unit-scale inputs, whatever the data's units.

References:
    Jiao, Kang, Lin, Liu, Zuo, "Latent Schrödinger Bridge Diffusion Model for Generative
    Learning", arXiv 2404.13309 (a pre-trained encoder-decoder shared by the latent generator).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from genbench.core.config import ConfigError
from genbench.core.registry import Registry

__all__ = ["CODECS", "AutoEncoder", "AutoencoderConfig", "register_codec"]

A = TypeVar("A", bound="type[AutoEncoder]")


@dataclass
class AutoencoderConfig:
    name: str = "identity"  # a registered codec: identity | pca | mlp | plugins
    latent_dim: int | None = None  # None: the data dimension (identity) or 2 (pca, mlp)
    standardize: bool = True  # latents scaled to zero mean, unit variance per coordinate
    source: dict[str, Any] | None = None  # a dataset config to pre-train on; None: the target
    seed: int = 0  # the autoencoder's own seed: shared by every run of a sweep
    n_source: int | None = None  # source size; None: the source dataset's n_train
    hidden: int = 256
    depth: int = 3
    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    cache: bool = True  # reuse the fitted encoder-decoder from cache_dir

    def __post_init__(self) -> None:
        if self.name not in CODECS:
            raise ValueError(f"unknown autoencoder {self.name!r}; available: "
                             f"{', '.join(CODECS.names())}")
        if self.latent_dim is not None and self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        CODECS.get(self.name).check_config(self)


class AutoEncoder(nn.Module):
    """A frozen encoder-decoder ``R^D -> R^d -> R^D`` with standardised latents.

    A codec subclasses this, registers with :func:`register_codec` and implements
    :meth:`_encode_raw`, :meth:`_decode_raw` and :meth:`_fit_raw`; it may override
    :meth:`check_config`, :meth:`resolve_latent_dim`, :meth:`build` and ``is_affine``.
    """

    name: ClassVar[str] = ""

    def __init__(self, config: AutoencoderConfig, data_dim: int):
        super().__init__()
        self.config, self.data_dim = config, data_dim
        d = self.resolve_latent_dim(config, data_dim)
        self.latent_dim = d
        self.register_buffer("z_mean", torch.zeros(d))
        self.register_buffer("z_scale", torch.ones(d))
        self.register_buffer("x_mean", torch.zeros(data_dim))
        self.register_buffer("components", torch.eye(data_dim)[:d])
        self.build()

    # -- to implement -------------------------------------------------------------------
    @classmethod
    def check_config(cls, config: AutoencoderConfig) -> None:
        """Reject settings this codec cannot honour (raise ``ValueError``), before any work."""

    @classmethod
    def resolve_latent_dim(cls, config: AutoencoderConfig, data_dim: int) -> int:
        """The latent dimension for data of dimension ``data_dim`` (default: 2 at most)."""
        return config.latent_dim or min(2, data_dim)

    def build(self) -> None:
        """Create the codec's networks (after the buffers)."""

    @property
    def is_affine(self) -> bool:
        """Whether encode is an invertible affine map (densities transfer exactly)."""
        return False

    def _encode_raw(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _decode_raw(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def _fit_raw(self, x: Tensor) -> dict[str, float]:
        """Fit the raw encoder-decoder on source points; returns statistics."""
        raise NotImplementedError

    # -- the contract -------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        x = x.to(self.z_mean.device)
        if x.ndim != 2 or x.shape[1] != self.data_dim:
            raise ConfigError(f"encode expects shape (n, {self.data_dim}), got {tuple(x.shape)}")
        return (self._encode_raw(x) - self.z_mean) / self.z_scale

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        z = z.to(self.z_mean.device)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ConfigError(f"decode expects shape (n, {self.latent_dim}), got {tuple(z.shape)}")
        return self._decode_raw(z * self.z_scale + self.z_mean)

    def log_det_encode(self) -> float:
        """``log |det d encode / dx|`` for affine encoders (``log p_x = log p_z + this``)."""
        if not self.is_affine:
            raise ConfigError(f"the {self.config.name} encoder is not an invertible affine map")
        return float(-self.z_scale.log().sum() + torch.linalg.slogdet(self.components)[1])

    def fit(self, x: Tensor) -> dict[str, float]:
        """Fit on source points ``x``; returns statistics."""
        cfg = self.config
        start = time.perf_counter()
        stats: dict[str, float] = {}
        stats.update(self._fit_raw(x))
        if cfg.standardize:
            with torch.no_grad():
                z = self._encode_raw(x)
                self.z_mean.copy_(z.mean(0))
                self.z_scale.copy_(z.std(0).clamp(min=1e-6))
        stats["train_seconds"] = time.perf_counter() - start
        self.freeze()
        return stats

    def freeze(self) -> AutoEncoder:
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self


CODECS: Registry[type[AutoEncoder]] = Registry(
    "codec", "genbench.codecs", builtins=("genbench.codecs.linear", "genbench.codecs.mlp"),
    accepts=lambda obj: isinstance(obj, type) and issubclass(obj, AutoEncoder),
    describe="AutoEncoder subclass", on_register=lambda name, cls: setattr(cls, "name", name))


def register_codec(name: str) -> Callable[[A], A]:
    """Class decorator registering an :class:`AutoEncoder` subclass as codec ``name``."""
    return CODECS.register(name)
