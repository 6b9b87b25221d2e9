"""The shared encoder-decoder: ``identity``, ``pca`` or a trained MLP autoencoder.

It is fitted once on a *source* data set (by default the target's own training split, drawn
with the autoencoder's own ``seed`` so every run of a sweep shares it), cached on disk under
a hash of its configuration (:mod:`genbench.codecs.cache`), then frozen and handed to every
solver. Latents are
standardised (per-coordinate mean and scale of the source latents) so every solver sees
unit-scale inputs, whatever the data's units.

References:
    Jiao, Kang, Lin, Liu, Zuo, "Latent Schrödinger Bridge Diffusion Model for Generative
    Learning", arXiv 2404.13309 (a pre-trained encoder-decoder shared by the latent generator).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from genbench.core.config import ConfigError

__all__ = ["AutoEncoder", "AutoencoderConfig"]

log = logging.getLogger(__name__)
KINDS = ("identity", "pca", "mlp")


@dataclass
class AutoencoderConfig:
    name: str = "identity"
    latent_dim: int | None = None
    standardize: bool = True
    source: dict[str, Any] | None = None
    seed: int = 0
    n_source: int | None = None
    hidden: int = 256
    depth: int = 3
    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    cache: bool = True

    def __post_init__(self) -> None:
        if self.name not in KINDS:
            raise ValueError(f"unknown autoencoder {self.name!r}; available: {', '.join(KINDS)}")
        if self.latent_dim is not None and self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.name == "identity" and self.latent_dim is not None:
            raise ValueError("the identity autoencoder keeps the data dimension: drop latent_dim")


def _mlp(d_in: int, d_out: int, hidden: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = d_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    layers.append(nn.Linear(width, d_out))
    return nn.Sequential(*layers)


class AutoEncoder(nn.Module):
    """A frozen encoder-decoder ``R^D -> R^d -> R^D``."""

    def __init__(self, config: AutoencoderConfig, data_dim: int):
        super().__init__()
        self.config, self.data_dim = config, data_dim
        d = data_dim if config.name == "identity" else (config.latent_dim or min(2, data_dim))
        if config.name == "pca" and d > data_dim:
            raise ConfigError(f"pca latent_dim={d} exceeds the data dimension {data_dim}")
        self.latent_dim = d
        self.register_buffer("z_mean", torch.zeros(d))
        self.register_buffer("z_scale", torch.ones(d))
        self.register_buffer("x_mean", torch.zeros(data_dim))
        self.register_buffer("components", torch.eye(data_dim)[:d])
        if config.name == "mlp":
            self.enc = _mlp(data_dim, d, config.hidden, config.depth)
            self.dec = _mlp(d, data_dim, config.hidden, config.depth)

    @property
    def is_affine(self) -> bool:
        """Whether encode is an invertible affine map (densities transfer exactly)."""
        return self.config.name == "identity" or (
            self.config.name == "pca" and self.latent_dim == self.data_dim
        )

    def _encode_raw(self, x: Tensor) -> Tensor:
        if self.config.name == "mlp":
            return self.enc(x)
        return (x - self.x_mean) @ self.components.T

    def _decode_raw(self, z: Tensor) -> Tensor:
        if self.config.name == "mlp":
            return self.dec(z)
        return z @ self.components + self.x_mean

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
        if cfg.name in ("identity", "pca"):
            self.x_mean.copy_(x.mean(0))
        if cfg.name == "pca":
            _, _, vh = torch.linalg.svd(x - self.x_mean, full_matrices=False)
            self.components.copy_(vh[: self.latent_dim])
        if cfg.name == "mlp":
            stats["recon_mse"] = self._train_mlp(x)
        if cfg.standardize:
            with torch.no_grad():
                z = self._encode_raw(x)
                self.z_mean.copy_(z.mean(0))
                self.z_scale.copy_(z.std(0).clamp(min=1e-6))
        stats["train_seconds"] = time.perf_counter() - start
        self.freeze()
        return stats

    def _train_mlp(self, x: Tensor) -> float:
        cfg = self.config
        # Normalise the input so one learning rate fits every data scale.
        mu, sd = x.mean(0), x.std(0).clamp(min=1e-6)
        xs = (x - mu) / sd
        params = list(self.enc.parameters()) + list(self.dec.parameters())
        opt = torch.optim.Adam(params, lr=cfg.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
        gen = torch.Generator(device=x.device).manual_seed(cfg.seed)
        loss = torch.zeros(())
        for _ in range(cfg.steps):
            idx = torch.randint(len(xs), (min(cfg.batch_size, len(xs)),), generator=gen,
                                device=x.device)
            loss = (self.dec(self.enc(xs[idx])) - xs[idx]).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        # Fold the input normalisation into the first and last layers.
        with torch.no_grad():
            first, last = self.enc[0], self.dec[-1]
            first.bias -= first.weight @ (mu / sd)
            first.weight /= sd
            last.weight *= sd[:, None]
            last.bias.mul_(sd).add_(mu)
        return float(loss.detach())

    def freeze(self) -> AutoEncoder:
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self


def __getattr__(name: str) -> Any:
    # The cache moved to genbench.codecs.cache (which imports this module): old imports work.
    if name in ("cache_key", "get_autoencoder"):
        from genbench.codecs import cache

        return getattr(cache, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
