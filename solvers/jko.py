"""JKO-iFlow: a stack of residual neural-ODE blocks, each one JKO step toward N(0, I).

Block ``k`` is a time-conditioned velocity field ``f_k(x, t)`` on ``t in [0, 1]``; its flow
map ``T_k`` is trained, greedily and alone, on the data pushed through blocks ``1..k-1`` to
minimise the JKO objective of the KL divergence to N(0, I) with step ``h_k``::

    E[ |x(1)|^2 / 2  -  int_0^1 div f_k(x(s), s) ds  +  |x(1) - x(0)|^2 / (2 h_k) ]

(the first two terms are KL(T_k # p_k || N(0, I)) up to a constant, the last the W2 proximal
term). Training integrates with a fixed-step ``torchdiffeq.odeint`` (rk4 by default) and a
Hutchinson estimate of the divergence, back-propagating through the solver; the steps grow
geometrically, ``h_k = h0 * h_growth^k``, and blocks are added until one moves the data by
less than ``tol`` in relative squared distance, ``E|x - T_k x|^2 / E|T_k x|^2 < tol``, *and*
the pushed data are within ``stop_margin`` times sampling noise of N(0, I) in sliced W2, or
``max_blocks`` is reached. Sampling integrates the blocks backward from N(0, I); the density
is exact, by the instantaneous change of variables through every block (exact trace).

Two choices keep the short CPU budget honest. Blocks see ``t * TIME_SCALE``: TimeMLP's
sinusoidal features reach frequency 200, which lets a field take unrelated values at the
fixed training integrator's nodes and *game* the fixed-step objective (a divergence the true flow
does not have); slow time features remove that. Block ``k`` starts from block ``k - 1``'s
weights (``warm_start``, as the public code does) with its output layer times
``warm_scale`` (default 0): it keeps the previous block's hidden features and starts at the
identity map f = 0. A full copy (``warm_scale=1``) overshoots, since the step's displacement
is h_k times the velocity -grad(log p + |x|^2 / 2) of the law it reaches (the step's
optimality condition, its Euler-Lagrange equation in Jordan, Kinderlehrer, Otto 1998), which
shrinks from block to block; training then pulls the field back to the identity and stalls
on the plateau there (on standardised data the objective's gradient at f = 0 has no
linear part, so a block must first learn high-frequency features: spectral bias, Rahaman
et al., ICML 2019). From f = 0 with the previous block's features, the gradient on the
output layer is non-zero at once.
This is an initialisation choice of ours, not part of the scheme (measured in
benchmarks/results/jko_rootcause.md). ``fit`` also reports, per block, its transport cost (the
W2 between its input and output, insofar as the block is the JKO step's optimal map), and
its objective under the training integrator and under the accurate one (a gap flags a gamed
integrator: raise ``train_steps``).

Every block's network is allocated up front (``max_blocks`` of them) and the number in use
is a persistent buffer, so a saved solver reloads with no special code. ``steps`` counts
training steps *per block*.

References:
    Xu, Cheng, Xie, "Normalizing flow neural networks by JKO scheme", NeurIPS 2023
    (JKO-iFlow; h_k = 0.25 * 1.4^k and rk4 with 3 steps per block in the public code).
    Cheng, Lu, Tan, Xie, "Convergence of flow-based generative models via proximal gradient
    descent in Wasserstein space", arXiv 2310.17582 (KL = O(eps^2) after ~log(1/eps) steps).
    Jordan, Kinderlehrer, Otto, "The variational formulation of the Fokker-Planck equation",
    SIAM J. Math. Anal. 1998 (the JKO scheme).
    Grathwohl et al., "FFJORD", ICLR 2019 (Hutchinson trace in continuous flows).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from genbench.core.budget import BudgetConfig, fixed_step_budget, split_evenly
from genbench.core.solver import (
    Solver,
    SolverConfig,
    TrainCallback,
    gaussian_log_prob,
    register_solver,
)
from genbench.core.training import make_ema, train
from solvers.nets import TimeMLP
from solvers.ode import (
    FIXED_METHODS,
    ODE_METHODS,
    TRACE_ESTIMATORS,
    integrate,
    integrate_with_divergence,
)

__all__ = ["JKOConfig", "JKOFlow"]

MOVEMENT_SAMPLE = 1000  # points on which each block's objective is re-evaluated
# A block is dropped when its accurate objective exceeds the identity's by more than this
# (nats per point): an identity-like block scores within ~1e-4 of it, a gamed one by O(1).
REJECT_MARGIN = 1e-2
SLICED_DIRECTIONS = 64  # directions of the sliced W2 to N(0, I) (fixed seed)
TIME_SCALE = 0.02  # blocks see t * TIME_SCALE: slow time features (module docstring)


@dataclass
class JKOConfig(SolverConfig):
    steps: int = 300  # training steps PER BLOCK (the lr schedule restarts every block)
    batch_size: int = 256
    lr: float = 5e-3
    ema_decay: float = 0.99
    hidden: int = 64
    max_blocks: int = 8  # at most this many JKO steps
    h0: float = 0.25  # step of the first block; h_k = h0 * h_growth^k
    h_growth: float = 1.4
    tol: float = 1e-3  # stop once a block moves E|x - T x|^2 / E|T x|^2 below this ...
    # ... and only once the pushed data are as close to N(0, I) as a sample of N(0, I)
    # itself (x stop_margin): a block that learned nothing also moves nothing.
    stop_margin: float = 2.0
    warm_start: bool = True  # block k starts from block k-1's weights
    # ... with its output layer times this: 0 keeps block k-1's features and starts at f = 0
    warm_scale: float = 0.0
    train_method: str = "rk4"  # euler | midpoint | rk4 (fixed steps, back-propagated through)
    train_steps: int = 3  # integration steps per block while training
    train_trace: str = "hutchinson"  # hutchinson | exact divergence while training
    sample_method: str = "dopri5"  # any torchdiffeq method of solvers.ode (sample, log_prob)
    sample_steps: int = 8  # steps per block for the fixed-step methods
    rtol: float = 1e-5
    atol: float = 1e-5

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("max_blocks", "train_steps", "sample_steps"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be positive, got {getattr(self, key)}")
        for key in ("h0", "h_growth", "rtol", "atol"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key} must be positive, got {getattr(self, key)}")
        if not 0 <= self.warm_scale <= 1:
            raise ValueError(f"warm_scale must be in [0, 1], got {self.warm_scale}")
        if not self.stop_margin > 0:
            raise ValueError(f"stop_margin must be positive, got {self.stop_margin}")
        if self.tol < 0:
            raise ValueError(f"tol must be >= 0 (0 trains all max_blocks), got {self.tol}")
        if self.train_method not in FIXED_METHODS:
            raise ValueError(
                f"train_method must be one of {FIXED_METHODS}, got {self.train_method!r}"
            )
        if self.train_trace not in TRACE_ESTIMATORS:
            raise ValueError(
                f"train_trace must be one of {TRACE_ESTIMATORS}, got {self.train_trace!r}"
            )
        if self.sample_method not in ODE_METHODS:
            raise ValueError(
                f"sample_method must be one of {ODE_METHODS}, got {self.sample_method!r}"
            )


def gaussian_w2_to_standard(x: Tensor) -> float:
    """W2 between N(m, C) (the moments of ``x``) and N(0, I): ``|m|^2 + tr(C + I - 2 C^{1/2})``.

    By Gelbrich's bound (Gelbrich, Math. Nachr. 1990, Thm. 2.1) this is a *lower* bound on
    W2(law of x, N(0, I)): a cheap proxy for how far the pushed data still are from the
    reference, blind to non-Gaussian shape beyond the second moments.
    """
    mean = x.mean(dim=0)
    cov = torch.atleast_2d(torch.cov(x.T.double()))
    root_trace = torch.linalg.eigvalsh(cov).clamp(min=0).sqrt().sum()
    value = mean.double().pow(2).sum() + cov.trace() + x.shape[1] - 2 * root_trace
    return float(value.clamp(min=0).sqrt())


def sliced_w2_to_normal(x: Tensor, seed: int = 0) -> float:
    """Sliced W2 between the sample ``x`` and N(0, I), against exact normal quantiles.

    Each projection of N(0, I) on a unit direction is N(0, 1), so the 1-D W2 of the sorted
    projections against the quantiles Phi^{-1}((i - 1/2) / n) needs no second sample
    (Bonneel, Rabin, Peyré, Pfister, JMIV 2015, the sliced distance). Unlike the moment
    proxy it sees non-Gaussian shape (e.g. 25 separated modes with unit covariance). Its
    value on an exact N(0, I) sample of the same size is the floor the stopping rule uses.
    """
    gen = torch.Generator().manual_seed(seed)
    dirs = torch.randn(x.shape[1], SLICED_DIRECTIONS, generator=gen, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    proj = (x.detach().double().cpu() @ dirs).sort(dim=0).values
    n = x.shape[0]
    levels = (torch.arange(1, n + 1, dtype=torch.float64) - 0.5) / n
    return float((proj - torch.special.ndtri(levels)[:, None]).pow(2).mean().sqrt())


@register_solver("jko")
class JKOFlow(Solver):
    """JKO-iFlow on latents: greedily trained neural-ODE blocks, exact density."""

    Config = JKOConfig
    config: JKOConfig
    has_density = True

    @classmethod
    def apply_budget(cls, config: JKOConfig, budget: BudgetConfig) -> dict[str, Any]:
        """``steps`` is per block: ``train_steps / max_blocks``; the sampler runs every block's
        ODE, so ``sample_steps`` per block is ``nfe / (max_blocks * calls per step)``. Both are
        upper bounds: training stops early once a block barely moves (``tol``)."""
        overrides: dict[str, Any] = {}
        what = "solver 'jko'"
        if budget.train_steps is not None:
            overrides["steps"] = split_evenly(budget.train_steps, config.max_blocks, what=what)
        if budget.nfe is not None:
            overrides["sample_method"], overrides["sample_steps"] = fixed_step_budget(
                budget.nfe, config.sample_method, default_method=budget.ode_method,
                repeats=config.max_blocks, what=what)
        return overrides
    # No sampling-only keys: fit pushes each block's data through the sampling ODE
    # (sample_method, sample_steps, rtol, atol), so changing them changes training.
    sampling_keys = ()

    def build(self) -> None:
        cfg = self.config
        self.blocks = nn.ModuleList(
            TimeMLP(self.dim, cfg.hidden, cfg.depth) for _ in range(cfg.max_blocks)
        )
        self.register_buffer("n_blocks", torch.tensor(0), persistent=True)
        self._active = 0

    def build_ema(self) -> None:
        """One moving average per block; ``self.ema`` is the active block's."""
        self.emas = nn.ModuleList(make_ema(b, self.config.ema_decay) for b in self.blocks)

    # -- the block being trained: what the shared loop optimises and averages ------------
    @property
    def ema(self) -> nn.Module:
        return self.emas[self._active]

    def trainable_module(self) -> nn.Module:
        return self.blocks[self._active]

    def field(self, k: int, *, averaged: bool = True) -> Callable[[Tensor, Tensor], Tensor]:
        """Block ``k``'s velocity ``f_k(x, t)``, ``t in [0, 1]`` (EMA weights by default)."""
        net = self.emas[k].module if averaged else self.blocks[k]
        return lambda x, t: net(x, t * TIME_SCALE)

    def step_size(self, k: int) -> float:
        """The JKO step ``h_k`` of block ``k`` (0-based)."""
        return self.config.h0 * self.config.h_growth**k

    def loss(self, z: Tensor) -> Tensor:
        """The JKO objective of the active block on ``z`` (already pushed through the others)."""
        cfg = self.config
        # Differentiable fixed-step solve: the loss back-propagates through the integrator.
        return self.objective(self._active, z, method=cfg.train_method, steps=cfg.train_steps,
                              trace=cfg.train_trace, averaged=False).mean()

    def objective(self, k: int, z: Tensor, *, trace: str = "exact", averaged: bool = True,
                  **integrator: Any) -> Tensor:
        """Block ``k``'s JKO objective per row of ``z``; ``integrator``: method, steps, rtol,
        atol of the ODE integration."""
        x1, int_div, _ = integrate_with_divergence(
            self.field(k, averaged=averaged), z, 0.0, 1.0, trace=trace, **integrator
        )
        potential = 0.5 * x1.pow(2).sum(dim=1)
        movement = (x1 - z).pow(2).sum(dim=1) / (2.0 * self.step_size(k))
        return potential - int_div + movement

    # -- training: one block at a time ---------------------------------------------------
    def fit(
        self,
        z: Tensor,
        *,
        steps: int | None = None,
        callback: TrainCallback | None = None,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Train blocks greedily on latents ``z``; ``steps`` is the budget *per block*."""
        cfg = self.config
        z = self.check_data(z)
        steps = steps or cfg.steps
        start = time.perf_counter()
        x = z
        curve: list[list[float]] = []
        blocks: list[dict[str, Any]] = []
        self.n_blocks.zero_()
        for k in range(cfg.max_blocks):
            self._active = k
            if k > 0 and cfg.warm_start:  # neighbouring JKO steps have similar fields
                self.blocks[k].load_state_dict(self.emas[k - 1].module.state_dict())
                with torch.no_grad():  # keep its features, scale its output (warm_scale)
                    self.blocks[k].layers[-1].weight.mul_(cfg.warm_scale)
                    self.blocks[k].layers[-1].bias.mul_(cfg.warm_scale)
            offset = k * steps
            block_callback = None
            if callback is not None:
                def block_callback(step: int, logs: dict[str, float], k=k, offset=offset):
                    callback(offset + step, logs | {"block": k})
            stats = train(self, x, steps=steps, callback=block_callback, progress=progress,
                          desc=f"train jko block {k + 1}/{cfg.max_blocks}")
            curve += [[offset + s, value] for s, value in stats["loss_curve"]]
            self.n_blocks.fill_(k + 1)
            x_next = self._push(k, x)
            blocks.append(self._movement(k, x, x_next) | {"final_loss": stats["final_loss"]})
            last = blocks[-1]
            if last["objective"] > last["objective_identity"] + REJECT_MARGIN:
                # The identity map is feasible, so a JKO step never scores worse than it
                # under the accurate solver; one that does gamed the fixed-step training
                # integrator (its inverse is then unstable): drop it and stop.
                last["rejected"] = True
                self.n_blocks.fill_(k)
                break
            x = x_next
            if (last["relative_movement"] < cfg.tol
                    and last["sliced_w2_to_normal"] <= cfg.stop_margin * last["normal_floor"]):
                break
        self._fitted.fill_(True)
        return {
            "steps": steps * len(blocks),
            "final_loss": curve[-1][1] if curve else float("nan"),
            "loss_curve": curve,
            "train_seconds": time.perf_counter() - start,
            "n_blocks": int(self.n_blocks),
            "blocks": blocks,
        }

    @torch.no_grad()
    def _push(self, k: int, x: Tensor) -> Tensor:
        out, _ = self._integrate(k, x, 0.0, 1.0)
        return out

    def _movement(self, k: int, x: Tensor, out: Tensor) -> dict[str, Any]:
        """Per-block diagnostics: the block's movement ``E|x - T_k x|^2`` (the quantity
        Cheng, Lu, Tan, Xie bound, arXiv 2310.17582, Sec. 4), its relative size (the
        stopping rule), moment-based and sliced distances of the pushed data to N(0, I), and
        the objective under the training integrator and under the accurate one (a gap means
        the fixed-step training integrator was gamed: raise ``train_steps``).

        ``transport_cost`` is ``sqrt(E|T(x) - x|^2)`` of the block's map ``T``. The JKO step's
        map is the optimal (Brenier) map between the block's input and output laws
        (Jordan, Kinderlehrer, Otto 1998), so this is their W2 distance insofar as the trained
        block is that step: an approximation, not a separate W2 estimate.
        """
        cfg = self.config
        moved = (out - x).pow(2).sum(dim=1).mean()
        m = min(MOVEMENT_SAMPLE, x.shape[0])
        with torch.no_grad():
            trained = self.objective(k, x[:m], method=cfg.train_method, steps=cfg.train_steps)
            accurate = self.objective(k, x[:m], **self._integrator_options())
        identity = 0.5 * x[:m].pow(2).sum(dim=1).mean()  # the objective of T = id
        return {"block": k, "h": self.step_size(k), "rejected": False,
                "objective_identity": float(identity),
                "movement": float(moved),
                "transport_cost": float(moved.sqrt()),
                "relative_movement": float(moved / out.pow(2).sum(dim=1).mean()),
                "gaussian_w2_to_normal": gaussian_w2_to_standard(out),
                "sliced_w2_to_normal": sliced_w2_to_normal(out[:m]),
                "normal_floor": sliced_w2_to_normal(
                    torch.randn(m, self.dim, generator=torch.Generator().manual_seed(k))),
                "objective_train_integrator": float(trained.mean()),
                "objective": float(accurate.mean())}

    # -- sampling and density ------------------------------------------------------------
    def _integrator_options(self) -> dict[str, Any]:
        cfg = self.config
        steps = cfg.sample_steps if cfg.sample_method in FIXED_METHODS else None
        return {"method": cfg.sample_method, "steps": steps, "rtol": cfg.rtol, "atol": cfg.atol}

    def _integrate(self, k: int, x: Tensor, t0: float, t1: float) -> tuple[Tensor, int]:
        return integrate(self.field(k), x, t0, t1, **self._integrator_options())

    def _flow(self, x: Tensor, inverse: bool) -> tuple[Tensor, int]:
        order = range(int(self.n_blocks))
        nfe = 0
        for k in reversed(order) if inverse else order:
            x, calls = self._integrate(k, x, *((1.0, 0.0) if inverse else (0.0, 1.0)))
            nfe += calls
        return x, nfe

    @torch.no_grad()
    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        noise = torch.randn(n, self.dim, generator=generator, device=self.device)
        x, self.nfe = self._flow(noise, inverse=True)
        return x

    @torch.no_grad()
    def _log_prob(self, z: Tensor) -> Tensor:
        # log p(x) = log N(T x) + sum_k int_0^1 div f_k: the density falls along each flow.
        x, total = z, torch.zeros(z.shape[0], device=z.device)
        for k in range(int(self.n_blocks)):
            x, int_div, _ = integrate_with_divergence(
                self.field(k), x, 0.0, 1.0, trace="exact", **self._integrator_options()
            )
            total = total + int_div
        return gaussian_log_prob(x) + total

