"""The affine codecs: ``identity`` (no reduction) and ``pca`` (the top principal directions).

Both encode ``x -> (x - mean) @ components.T``; with as many components as data dimensions
the map is invertible, so densities transfer exactly (the harness's data-space NLL).
"""

from __future__ import annotations

import torch
from torch import Tensor

from genbench.codecs.base import AutoEncoder, AutoencoderConfig, register_codec
from genbench.core.config import ConfigError

__all__ = ["IdentityCodec", "LinearCodec", "PCACodec"]


class LinearCodec(AutoEncoder):
    """``encode(x) = (x - x_mean) @ components.T``, ``decode(z) = z @ components + x_mean``."""

    def _encode_raw(self, x: Tensor) -> Tensor:
        return (x - self.x_mean) @ self.components.T

    def _decode_raw(self, z: Tensor) -> Tensor:
        return z @ self.components + self.x_mean


@register_codec("identity")
class IdentityCodec(LinearCodec):
    """The data space itself (centred, then standardised like every codec)."""

    @classmethod
    def check_config(cls, config: AutoencoderConfig) -> None:
        if config.latent_dim is not None:
            raise ValueError("the identity autoencoder keeps the data dimension: drop latent_dim")

    @classmethod
    def resolve_latent_dim(cls, config: AutoencoderConfig, data_dim: int) -> int:
        return data_dim

    @property
    def is_affine(self) -> bool:
        return True

    def _fit_raw(self, x: Tensor) -> dict[str, float]:
        self.x_mean.copy_(x.mean(0))
        return {}


@register_codec("pca")
class PCACodec(LinearCodec):
    """Projection on the top ``latent_dim`` right singular vectors of the centred source."""

    @classmethod
    def resolve_latent_dim(cls, config: AutoencoderConfig, data_dim: int) -> int:
        d = super().resolve_latent_dim(config, data_dim)
        if d > data_dim:
            raise ConfigError(f"pca latent_dim={d} exceeds the data dimension {data_dim}")
        return d

    @property
    def is_affine(self) -> bool:
        return self.latent_dim == self.data_dim

    def _fit_raw(self, x: Tensor) -> dict[str, float]:
        self.x_mean.copy_(x.mean(0))
        _, _, vh = torch.linalg.svd(x - self.x_mean, full_matrices=False)
        self.components.copy_(vh[: self.latent_dim])
        return {}
