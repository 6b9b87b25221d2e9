"""The ``mlp`` codec: an MLP autoencoder trained on reconstruction (mean squared error)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genbench.codecs.base import AutoEncoder, register_codec

__all__ = ["MLPCodec"]


def _mlp(d_in: int, d_out: int, hidden: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = d_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    layers.append(nn.Linear(width, d_out))
    return nn.Sequential(*layers)


@register_codec("mlp")
class MLPCodec(AutoEncoder):
    """Encoder and decoder MLPs (``depth`` hidden layers of ``hidden`` units, SiLU)."""

    def build(self) -> None:
        cfg = self.config
        self.enc = _mlp(self.data_dim, self.latent_dim, cfg.hidden, cfg.depth)
        self.dec = _mlp(self.latent_dim, self.data_dim, cfg.hidden, cfg.depth)

    def _encode_raw(self, x: Tensor) -> Tensor:
        return self.enc(x)

    def _decode_raw(self, z: Tensor) -> Tensor:
        return self.dec(z)

    def _fit_raw(self, x: Tensor) -> dict[str, float]:
        return {"recon_mse": self._train_mlp(x)}

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

