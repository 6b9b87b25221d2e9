"""Flow matching: independent CFM, minibatch OT-CFM and rectified flow, one ODE sampler.

A velocity network ``v(x, t)`` regresses the conditional velocity ``x1 - x0`` at
``x_t = (1 - t) x0 + t x1 + sigma eps`` with ``x0 ~ N(0, I)``, ``x1`` a data row,
``t ~ U[0, 1]``. The coupling of ``(x0, x1)`` is

- ``independent``: the product of the two minibatches (Lipman et al.; with ``sigma=0``
  this is the 1-rectified flow of Liu et al.);
- ``ot``: pairs matched by the exact optimal-transport plan (POT ``ot.emd``, squared
  Euclidean cost) between the noise and data minibatches (Tong et al.; Pooladian et al.).

``rectified: k`` then runs k reflow rounds: draw noise, push it through the learned ODE,
and keep training on those fixed (noise, image) pairs, which straightens the paths.
Samples integrate ``dx/dt = v(x, t)`` from ``t = 0`` to 1 with :func:`solvers.ode.integrate`;
``log_prob`` runs the same ODE backwards with its divergence (the flow is an ODE from
``N(0, I)``, so the change of variables gives an exact density).

References:
    Lipman, Chen, Ben-Hamu, Nickel, Le, "Flow Matching for Generative Modeling", ICLR 2023.
    Tong, Fatras, Malkin, Huguet, Zhang, Rector-Brooks, Wolf, Bengio, "Improving and
    Generalizing Flow-Based Generative Models with Minibatch Optimal Transport", TMLR 2024.
    Pooladian, Ben-Hamu, Domingo-Enrich, Amos, Lipman, Chen, "Multisample Flow Matching:
    Straightening Flows with Minibatch Couplings", ICML 2023.
    Liu, Gong, Liu, "Flow Straight and Fast: Learning to Generate and Transfer Data with
    Rectified Flow", ICLR 2023.
    Flamary et al., "POT: Python Optimal Transport", JMLR 2021.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import ot
import torch
from torch import Tensor

from genbench.core.budget import BudgetConfig, split_evenly
from genbench.core.regression import Regression
from genbench.core.solver import TrainCallback, register_solver
from genbench.core.training import train
from solvers.nets import SMOOTH_TIME_FREQUENCY, TimeMLP
from solvers.ode import ODEFlowSolver, ODESamplerConfig, integrate
from solvers.ot_coupling import OTPairStream

__all__ = ["CFM", "CFMConfig", "COUPLINGS", "ot_pairs"]

COUPLINGS = ("independent", "ot")


@dataclass
class CFMConfig(ODESamplerConfig):
    # POT's exact plan costs O(b^3): at b=512 it would triple the step time on one core.
    batch_size: int = 256
    # Measured on moons/8gaussians/checkerboard: mean W2/floor 1.38 at 2e-3, 1.27 at 5e-3.
    lr: float = 5e-3
    coupling: str = "ot"  # independent | ot (exact minibatch OT plan, POT ot.emd)
    sigma: float = 0.0  # noise of the conditional path x_t
    rectified: int = 0  # reflow rounds (rectified flow); 0 = off
    reflow_steps: int = 2000  # training steps per reflow round
    reflow_pairs: int = 10000  # (noise, image) pairs generated per reflow round
    # Solve the next minibatch's OT plan in a worker thread during this step (same pairs).
    ot_prefetch: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.coupling not in COUPLINGS:
            raise ValueError(f"coupling must be one of {COUPLINGS}, got {self.coupling!r}")
        if self.sigma < 0:
            raise ValueError(f"sigma must be non-negative, got {self.sigma}")
        if self.rectified < 0:
            raise ValueError(f"rectified (reflow rounds) must be >= 0, got {self.rectified}")
        for key in ("reflow_steps", "reflow_pairs"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be positive, got {getattr(self, key)}")


def ot_pairs(x0: Tensor, x1: Tensor, n: int | None = None) -> tuple[Tensor, Tensor]:
    """Pairs ``(x0[i], x1[j])`` from the exact OT plan between two batches.

    The squared-distance matrix is built on the batches' device and crosses to the host
    once for POT's network simplex. For equal batches and ``n`` = the batch (training), the
    plan is a permutation (a vertex of the Birkhoff polytope, which the simplex returns), so
    each row is paired with its match: the expectation of resampling ``n`` pairs from the
    plan, with no duplicated or dropped rows and no multinomial draw. Otherwise ``n`` pairs
    are drawn by one ``torch.multinomial`` over the flattened plan, back on the device.
    """
    n = x0.shape[0] if n is None else n
    cost = torch.cdist(x0, x1).square()
    plan = ot.emd([], [], cost.detach().cpu().double().numpy())
    if n == x0.shape[0] == x1.shape[0]:
        match = torch.from_numpy(plan.argmax(axis=1)).to(x1.device, non_blocking=True)
        return x0, x1[match]
    weights = torch.from_numpy(np.ascontiguousarray(plan, dtype=np.float32).ravel())
    flat = torch.multinomial(weights.to(x0.device, non_blocking=True), n, replacement=True)
    rows = torch.div(flat, x1.shape[0], rounding_mode="floor")
    return x0[rows], x1[flat % x1.shape[0]]


@register_solver("cfm")
class CFM(ODEFlowSolver):
    """Conditional flow matching from ``N(0, I)`` with an independent or OT coupling."""

    Config = CFMConfig
    config: CFMConfig
    # rtol/atol also set reflow's training solves (rectified > 0): not sampling-only here.
    sampling_keys = ("method", "sample_steps", "trace", "exact_trace_max_dim", "trace_seed")

    @classmethod
    def apply_budget(cls, config: CFMConfig, budget: BudgetConfig) -> dict[str, Any]:
        """The ODE's NFE (:class:`ODEFlowSolver`); with reflow rounds, ``train_steps`` is
        shared evenly by the first training and each round (``steps``, ``reflow_steps``).
        The dopri5 solves that make reflow's pairs are training cost outside the budget."""
        overrides = super().apply_budget(config, budget)
        if budget.train_steps is not None and config.rectified > 0:
            per_stage = split_evenly(budget.train_steps, 1 + config.rectified,
                                     what="solver 'cfm'")
            overrides |= {"steps": per_stage, "reflow_steps": per_stage}
        return overrides

    def build(self) -> None:
        cfg = self.config
        self.net = TimeMLP(self.dim, cfg.hidden, cfg.depth, max_frequency=SMOOTH_TIME_FREQUENCY)
        self._reflow = False  # in reflow rounds a training row is [noise | image]
        self._pairs: OTPairStream | None = None

    @property
    def batch_seeds(self) -> bool:
        """Seeds can train as one batched model (genbench.core.ensemble), unless reflow
        rounds follow the flow matching."""
        return self.config.rectified == 0

    def minibatches(self, z: Tensor, batch: int, steps: int) -> Iterator[Tensor]:
        """OT coupling: rows ``[x0 | x1]`` already paired by :class:`OTPairStream`."""
        if self._reflow or self.config.coupling != "ot":
            return super().minibatches(z, batch, steps)
        self._pairs = OTPairStream(z, batch, steps, prefetch=self.config.ot_prefetch,
                                   on_close=self._detach_pairs)
        return self._pairs

    def _detach_pairs(self) -> None:
        self._pairs = None

    def regression(self, z: Tensor) -> Regression:
        """The conditional flow matching regression (Lipman et al., Sec. 3.2; Tong et al.,
        Sec. 3): ``v(x_t, t)`` regresses ``x1 - x0`` at ``x_t = (1 - t) x0 + t x1 + sigma eps``
        (draws: the noise ``x0`` unless the rows are already paired, ``t``, then ``eps``)."""
        if self._reflow or z.shape[1] == 2 * self.dim:  # rows [x0 | x1], already paired
            x0, x1 = z[:, : self.dim], z[:, self.dim :]
        else:
            x0, x1 = torch.randn_like(z), z
            if self.config.coupling == "ot":
                x0, x1 = ot_pairs(x0, x1)
        t = torch.rand(x1.shape[0], 1, device=x1.device)
        x_t = (1 - t) * x0 + t * x1
        if self.config.sigma > 0:
            x_t = x_t + self.config.sigma * torch.randn_like(x_t)
        if self._pairs is not None:  # after this step's draws: the synchronous draw order
            self._pairs.kick()
        return Regression(x_t, t.squeeze(1), x1 - x0)

    def loss(self, z: Tensor) -> Tensor:
        return self.regression(z).loss_of(self.net)

    def fit(self, z: Tensor, *, steps: int | None = None, callback: TrainCallback | None = None,
            progress: bool = False) -> dict[str, Any]:
        """Flow matching on ``z``, then ``rectified`` reflow rounds on generated pairs.

        Each round draws ``reflow_pairs`` noise rows, pushes them through the current ODE
        (EMA weights, adaptive dopri5 at ``rtol``/``atol`` even when sampling uses a
        fixed-step method: reflow straightens the exact flow, not its discretisation) and
        trains ``reflow_steps`` more steps on the fixed pairs; the
        round's time, pair generation included, counts as training time.
        """
        stats = super().fit(z, steps=steps, callback=callback, progress=progress)
        cfg = self.config
        stats["reflow"] = []
        done = stats["steps"]
        try:
            for round_ in range(1, cfg.rectified + 1):
                start = time.perf_counter()
                noise = torch.randn(cfg.reflow_pairs, self.dim, device=self.device)
                with torch.no_grad():  # the pairs follow the exact flow, whatever the sampler
                    image, nfe = integrate(self.velocity, noise, 0.0, 1.0, method="dopri5",
                                           rtol=cfg.rtol, atol=cfg.atol)
                self._reflow = True
                # Trackers need increasing steps: reflow rounds continue the count.
                shifted = None if callback is None else (
                    lambda step, values, offset=done: callback(offset + step, values))
                round_stats = train(self, torch.cat([noise, image], dim=1),
                                    steps=cfg.reflow_steps, callback=shifted,
                                    progress=progress, desc=f"reflow {round_}")
                done += cfg.reflow_steps
                self._reflow = False
                round_stats["pair_nfe"] = nfe
                stats["reflow"].append(round_stats)
                stats["train_seconds"] += time.perf_counter() - start
        finally:
            self._reflow = False
        return stats

    t_prior, t_data = 0.0, 1.0

    def velocity(self, x: Tensor, t: Tensor) -> Tensor:
        """The learned velocity field (EMA weights)."""
        return self.ema.module(x, t)
