"""Networks shared by the solvers: one time-conditioned MLP signature, ``net(x, t)``.

``t`` is a tensor of shape ``(batch,)`` or a scalar (broadcast over the batch); every
solver calls its network the same way, so the ODE/SDE wrappers are written once.

References:
    Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions in Low
    Dimensional Domains", NeurIPS 2020 (the sinusoidal time embedding).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

__all__ = ["SMOOTH_TIME_FREQUENCY", "TimeEmbedding", "TimeMLP"]

# Top time frequency for networks integrated by an adaptive ODE solver (cfm, pfode): a field
# that can oscillate 200 times over [0, 1] makes dopri5 take ~3x the steps for the same W2
# (benchmarks/results/perf.md, "Sampling cost against the time embedding's top frequency").
SMOOTH_TIME_FREQUENCY = 20.0


class TimeEmbedding(nn.Module):
    """Sinusoidal features of a scalar time ``t`` in ``[0, 1]`` (log-spaced frequencies)."""

    def __init__(self, n_features: int = 32, max_frequency: float = 200.0):
        super().__init__()
        half = n_features // 2
        freqs = torch.exp(torch.linspace(0.0, math.log(max_frequency), half))
        self.register_buffer("freqs", freqs, persistent=False)
        self.n_features = 2 * half

    def forward(self, t: Tensor) -> Tensor:
        angles = t[:, None] * self.freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)


class TimeMLP(nn.Module):
    """MLP on ``[x, embed(t)]`` with SiLU: ``(batch, dim), (batch,) -> (batch, dim)``."""

    def __init__(self, dim: int, hidden: int = 256, depth: int = 3, time_features: int = 32,
                 max_frequency: float = 200.0):
        super().__init__()
        self.embed = TimeEmbedding(time_features, max_frequency)
        layers: list[nn.Module] = []
        width = dim + self.embed.n_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.layers = nn.Sequential(*layers)
        # The first layer reads x (dim columns) beside n_features time features, so PyTorch's
        # default init (bound 1/sqrt(dim + n_features)) leaves x ~4x too faint in 2-D: the
        # net starts nearly linear in x, and on standardised latents whose target has no
        # linear part (circles: radial) it stays at that saddle (cfm on circles learned
        # nothing in 4,000 steps, W2/floor 4.6). Init the x columns as a layer reading x
        # alone would be (bound 1/sqrt(dim)); measured in benchmarks/results/robustness.md.
        with torch.no_grad():
            self.layers[0].weight[:, :dim] *= math.sqrt((dim + self.embed.n_features) / dim)

    def forward_stacked(self, params: Mapping[str, Tensor], x: Tensor, t: Tensor) -> Tensor:
        """``K`` networks of this shape at once: ``params[name]`` is the ``K`` networks'
        parameter ``name`` stacked on a leading axis, ``x`` ``(K, batch, dim)``, ``t``
        ``(K, batch)`` -> ``(K, batch, dim)``. Network ``k`` computes :meth:`forward` of
        ``params[.][k]`` on ``(x[k], t[k])``; each layer is one batched ``baddbmm`` over the
        ``K`` networks (bias fused). The time features use this module's frequencies (a
        fixed buffer, the same in every network of this shape)."""
        angles = t[..., None] * self.embed.freqs
        h = torch.cat([x, angles.sin(), angles.cos()], dim=-1)
        for i, layer in enumerate(self.layers):
            if isinstance(layer, nn.Linear):
                weight, bias = params[f"layers.{i}.weight"], params[f"layers.{i}.bias"]
                h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
            else:
                h = layer(h)
        return h

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        if not isinstance(t, Tensor):
            # torch.full, not torch.as_tensor: a Python number sent to a GPU by as_tensor
            # is a blocking copy, once per sampler step.
            t = torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)
        elif t.ndim == 0:
            t = t.expand(x.shape[0])
        return self.layers(torch.cat([x, self.embed(t.reshape(-1))], dim=1))
