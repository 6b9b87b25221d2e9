"""A simulation-free training loss in regression form: the draws apart from the network.

The losses of ``ddpm``, ``pfode``, ``cfm`` and ``lsb`` all have one shape: draw network
inputs ``(x, t)``, a target and (optionally) a per-row weight from the minibatch and the
random stream, then average the weighted squared error of the network's output,

    loss = mean_i  w_i / q_i * | net(x_i, t_i) - target_i |^2,

with ``w = 1``, ``q = 1`` unless given (denoising score matching, Vincent 2011; the DDPM
eps-regression, Ho et al. 2020, eq. 14; the conditional flow matching objective,
Lipman et al. 2023, Sec. 3.2). A :class:`Regression` holds these draws without the network,
so the losses of several seeds can be evaluated in one batched network call
(:mod:`genbench.core.ensemble`): :meth:`Regression.stack` puts ``K`` seeds' draws on a
leading seed axis and :meth:`Regression.loss` reduces each seed's rows separately.

``weight`` and ``divisor`` are kept apart (not one pre-divided weight) so a solver whose loss
was ``err * w / q`` keeps its exact floating-point result.

References:
    Vincent, "A Connection Between Score Matching and Denoising Autoencoders", Neural
    Computation 2011.
    Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
    Lipman, Chen, Ben-Hamu, Nickel, Le, "Flow Matching for Generative Modeling", ICLR 2023.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Regression"]


@dataclass
class Regression:
    """One minibatch's regression: ``net(x, t)`` should match ``target``.

    Shapes for one seed: ``x`` and ``target`` ``(batch, dim)``, ``t`` ``(batch,)``, ``weight``
    and ``divisor`` ``(batch,)``, a scalar tensor or ``None`` (1). After :meth:`stack`, every
    field has a leading seed axis ``K``.
    """

    x: Tensor
    t: Tensor
    target: Tensor
    weight: Tensor | None = None
    divisor: Tensor | None = None

    def loss(self, out: Tensor) -> Tensor:
        """The mean weighted squared error of ``out`` (the network at ``(x, t)``): a scalar
        for one seed, ``(K,)`` (one loss per seed) for a stacked regression."""
        err = (out - self.target).pow(2).sum(dim=-1)
        if self.weight is not None:
            err = err * self.weight
        if self.divisor is not None:
            err = err / self.divisor
        return err.mean(dim=-1)

    def loss_of(self, net: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """The loss of ``net``: :meth:`loss` of ``net(x, t)``."""
        return self.loss(net(self.x, self.t))

    @staticmethod
    def stack(parts: Sequence[Regression]) -> Regression:
        """``K`` seeds' regressions (equal shapes) on a leading seed axis."""
        if not parts:
            raise ValueError("Regression.stack needs at least one regression")
        rows = parts[0].x.shape[0]
        if any(p.x.shape != parts[0].x.shape for p in parts):
            raise ValueError("Regression.stack: every seed's minibatch must have one shape, got "
                             f"{[tuple(p.x.shape) for p in parts]}")

        def rowwise(values: list[Tensor | None]) -> Tensor | None:
            if values[0] is None:
                if any(v is not None for v in values):
                    raise ValueError("Regression.stack: weight/divisor given for some seeds only")
                return None
            return torch.stack([v.reshape(-1).expand(rows) if v.numel() == 1 else v.reshape(rows)
                                for v in values])  # type: ignore[union-attr]

        return Regression(torch.stack([p.x for p in parts]), torch.stack([p.t for p in parts]),
                          torch.stack([p.target for p in parts]),
                          rowwise([p.weight for p in parts]), rowwise([p.divisor for p in parts]))
