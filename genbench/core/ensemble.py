"""Several seeds of one solver trained together as one batched model.

The networks of ``K`` solvers of one class and config (one per seed, each built after
``torch.manual_seed(seed)`` exactly as a solo run builds it) are stacked into one set of
parameters with a leading seed axis (:func:`torch.func.stack_module_state`) and updated by
one optimiser step for all (AdamW is elementwise, so stacking does not mix seeds; the
gradient-norm clip and the loss log are per seed). This is PyTorch's model ensembling recipe.

A step shares the work of the ``K`` seeds. Each solver gives its loss in regression form
(:meth:`Solver.regression`, a :class:`~genbench.core.regression.Regression`: the network's
inputs, the target and the weight, drawn without the network): for seed ``k`` the step
installs its generator state, draws its minibatch (:meth:`Solver.minibatches`) and its
regression (a few small tensor operations), and keeps the state for its next step. The ``K``
regressions are stacked to ``(K, batch, ...)`` and go through ONE batched forward and
backward of the ``K`` networks: the network's own ``forward_stacked`` (``TimeMLP``: one
``baddbmm`` per layer over the seed axis, large enough for both cores of a CPU) or, for a
network without one, :func:`torch.vmap` over :func:`torch.func.functional_call`. The ``K``
losses are reduced per seed from the stacked outputs, and one clip, optimiser and EMA step
follow. Per-step work that grows with ``K`` is the seeds' draws only.

Seed ``k`` therefore sees the data order, noise and times of its solo run, from its solo
initialisation, and keeps its own EMA; only floating-point rounding differs (a batched
matmul sums in another order), so runs agree statistically, not bit for bit.

Requirements, declared by a solver with the class attribute (or property) ``batch_seeds``
and an implementation of :meth:`Solver.regression`: training is the shared loop over its
loss (no extra rounds after it) and the network is :meth:`Solver.trainable_module`.
``ddpm``, ``pfode``, ``lsb`` and ``cfm`` (without reflow rounds) qualify; for ``cfm`` with
the OT coupling each seed's :class:`~solvers.ot_coupling.OTPairStream` solves its own plans
in its prefetch worker. ``jko`` does not: each block is trained through an ODE solve whose
adaptive step sizes depend on that seed's network, and blocks are added until a per-seed
stopping rule fires, so the seeds' computations have different shapes and lengths; its
seeds train one after another (``fit_seeds`` falls back to solo fits, and says so).

References:
    PyTorch tutorial "Model ensembling" (``torch.func.stack_module_state``, ``vmap`` over
    ``functional_call``); Horace He, Richard Zou, "functorch: JAX-like composable function
    transforms for PyTorch", 2021.
    Loshchilov, Hutter, "Decoupled Weight Decay Regularization", ICLR 2019 (AdamW acts
    elementwise).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state
from tqdm.auto import tqdm

from genbench.core.regression import Regression
from genbench.core.solver import DivergenceError, Solver, TrainCallback
from genbench.core.training import make_ema, make_optimizer

__all__ = ["NETWORKS", "batch_support", "fit_seeds", "generator_state", "train_together"]


def batch_support(solvers: Sequence[Solver]) -> str | None:
    """None when these solvers can train as one batched model; otherwise why not."""
    if not solvers:
        return "no solvers given"
    first = solvers[0]
    name = first.name or type(first).__name__
    if not getattr(first, "batch_seeds", False):
        return (f"solver {name!r} cannot batch seeds (its training is not the shared loop over "
                "a simulation-free loss, or an option such as reflow adds rounds)")
    if type(first).regression is Solver.regression:
        return (f"solver {name!r} cannot batch seeds: it declares batch_seeds but gives no "
                "regression form of its loss (Solver.regression)")
    for other in solvers[1:]:
        if type(other) is not type(first) or other.dim != first.dim:
            return "batched seeds must be one solver class with one latent dimension"
        if other.config != first.config:
            return "batched seeds must share one solver config (only the seed differs)"
        if other.device != first.device:
            return "batched seeds must live on one device"
    return None


def _generator(device: torch.device) -> torch.Generator:
    """The default generator that the solvers' draws on ``device`` use."""
    if device.type == "cuda":
        return torch.cuda.default_generators[device.index or 0]
    return torch.default_generator


def generator_state(device: torch.device | str) -> Tensor:
    """The state of the generator that draws on ``device`` (capture it where a solo run's
    ``fit`` would start, i.e. right after building the solver)."""
    return _generator(torch.device(device)).get_state()


class _Stacked(nn.Module):
    """The stacked parameters as one module, so one optimiser and one :class:`EMA` serve all."""

    def __init__(self, params: dict[str, Tensor]):
        super().__init__()
        self.names = list(params)
        self.values = nn.ParameterList([nn.Parameter(p.detach().clone()) for p in params.values()])

    def as_dict(self) -> dict[str, Tensor]:
        return dict(zip(self.names, self.values, strict=True))


NETWORKS = ("auto", "stacked", "vmap")


def _batched_network(net: nn.Module, buffers: dict[str, Tensor], networks: str,
                     ) -> Callable[[dict[str, Tensor], Tensor, Tensor], Tensor]:
    """``f(params, x, t)``: the ``K`` networks (stacked ``params``) on ``(K, batch, ...)``
    inputs in one call. ``stacked``: ``net.forward_stacked`` (needs one set of buffers for
    all seeds); ``vmap``: :func:`torch.vmap` over :func:`torch.func.functional_call`;
    ``auto``: ``stacked`` where the network offers it and the seeds' buffers agree."""
    if networks not in NETWORKS:
        raise ValueError(f"networks must be one of {NETWORKS}, got {networks!r}")
    stacked = getattr(net, "forward_stacked", None)
    shared = all(bool((b == b[:1]).all()) for b in buffers.values())  # once, before training
    if networks == "auto":
        networks = "stacked" if stacked is not None and shared else "vmap"
    if networks == "stacked":
        if stacked is None:
            raise ValueError(f"networks='stacked': {type(net).__name__} has no forward_stacked")
        if not shared:
            raise ValueError("networks='stacked': the seeds' network buffers differ")
        return lambda params, x, t: stacked(params, x, t)
    template = copy.deepcopy(net).to("meta")

    def call(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor, t: Tensor) -> Tensor:
        return functional_call(template, (p, b), (x, t))

    vmapped = torch.vmap(call)
    return lambda params, x, t: vmapped(params, buffers, x, t)


def _clip_per_seed(grads: list[Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` for each seed separately (seed axis 0), without a host read."""
    norms = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads]).sum(0).sqrt()
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.ndim - 1))))


def train_together(solvers: Sequence[Solver], data: Sequence[Tensor], *,
                   rng_states: Sequence[Tensor] | None = None, steps: int | None = None,
                   callbacks: Sequence[TrainCallback | None] | None = None,
                   progress: bool = False, networks: str = "auto",
                   ) -> list[dict[str, Any] | DivergenceError]:
    """Train ``solvers[k]`` on ``data[k]`` for every ``k`` as one batched model.

    ``networks``: how the ``K`` networks run in one call (:data:`NETWORKS`): ``auto`` (the
    network's ``forward_stacked`` when it has one, else ``vmap``), ``stacked`` or ``vmap``.

    ``rng_states[k]``: seed ``k``'s generator state at the start of training (default: the
    current state for every seed, which makes the seeds differ only by initialisation and
    data). Returns, per seed, :func:`genbench.core.training.train`'s statistics or the
    :class:`DivergenceError` a solo run would have raised; the solvers are left fitted.
    """
    if networks not in NETWORKS:
        raise ValueError(f"networks must be one of {NETWORKS}, got {networks!r}")
    reason = batch_support(solvers)
    if reason:
        raise ValueError(f"cannot train these seeds together: {reason}")
    if len(data) != len(solvers):
        raise ValueError(f"one data tensor per solver: got {len(data)} for {len(solvers)}")
    k = len(solvers)
    first = solvers[0]
    cfg = first.config
    steps = steps or cfg.steps
    gen = _generator(first.device)
    states = list(rng_states) if rng_states is not None else [gen.get_state()] * k
    callbacks = list(callbacks) if callbacks is not None else [None] * k
    zs = []
    for solver, z in zip(solvers, data, strict=True):
        z = solver.check_data(z)
        solver.prepare(z)
        zs.append(z)
    nets = [s.trainable_module() for s in solvers]
    params, buffers = stack_module_state(nets)
    forward = _batched_network(nets[0], buffers, networks)
    stacked = _Stacked(params)
    ema = make_ema(stacked, cfg.ema_decay)
    ema._count = first.ema._count  # continue the solo EMAs' warm-up (all seeds equal)
    opt, sched = make_optimizer(stacked.parameters(), cfg, steps)

    batches = [s.minibatches(z, min(cfg.batch_size, z.shape[0]), steps)
               for s, z in zip(solvers, zs, strict=True)]
    curves: list[list[list[float]]] = [[] for _ in range(k)]
    failed: list[DivergenceError | None] = [None] * k
    running = torch.zeros(k, device=first.device)
    since = 0
    bar = tqdm(total=steps, desc=f"train {first.name} x{k} seeds", disable=not progress,
               leave=False, mininterval=0.5, dynamic_ncols=True)
    start = time.perf_counter()
    for s in solvers:
        s.train()
    try:
        for step in range(1, steps + 1):
            parts = []
            for i, solver in enumerate(solvers):  # seed i's draws, from seed i's stream
                gen.set_state(states[i])
                parts.append(solver.regression(next(batches[i])))
                states[i] = gen.get_state()
            reg = Regression.stack(parts)
            loss = reg.loss(forward(stacked.as_dict(), reg.x, reg.t))  # (K,): one per seed
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            if cfg.grad_clip > 0:
                _clip_per_seed([q.grad for q in stacked.values], cfg.grad_clip)
            opt.step()
            sched.step()
            ema.update_parameters(stacked)
            running += loss.detach()
            since += 1
            if step % cfg.log_every == 0 or step == steps:
                values = (running / since).tolist()  # the only host read, every log_every
                running.zero_()
                since = 0
                lr = sched.get_last_lr()[0]
                for i, value in enumerate(values):
                    if failed[i] is not None:
                        continue
                    if not math.isfinite(value):
                        failed[i] = DivergenceError(
                            f"solver {first.name!r}: non-finite training loss ({value}) by step "
                            f"{step}; lower lr, raise grad_clip strictness, or check the data "
                            "scale")
                        continue
                    curves[i].append([step, value])
                    if callbacks[i] is not None:
                        callbacks[i](step, {"loss": value, "lr": lr})
                bar.set_postfix(loss=f"{values[0]:.4f}", refresh=False)
            bar.update(1)
            if all(f is not None for f in failed):
                break
    finally:
        for b in batches:
            close = getattr(b, "close", None)
            if close is not None:
                close()
        bar.close()
    seconds = time.perf_counter() - start
    _unstack(solvers, stacked, ema, buffers)
    out: list[dict[str, Any] | DivergenceError] = []
    for i, solver in enumerate(solvers):
        solver._fitted.fill_(True)
        out.append(failed[i] or {
            "steps": steps, "final_loss": curves[i][-1][1] if curves[i] else float("nan"),
            "loss_curve": curves[i], "train_seconds": seconds / k,
            "batched_seeds": k, "batch_train_seconds": seconds, "rng_state": states[i]})
    return out


@torch.no_grad()
def _unstack(solvers: Sequence[Solver], stacked: _Stacked, ema: nn.Module,
             buffers: dict[str, Tensor]) -> None:
    """Copy seed ``k``'s slice of the trained and averaged weights into ``solvers[k]``."""
    averaged = dict(zip(stacked.names, ema.module.values, strict=True))
    for i, solver in enumerate(solvers):
        net = solver.trainable_module()
        net.load_state_dict({n: v[i] for n, v in stacked.as_dict().items()}
                            | {n: b[i] for n, b in buffers.items()
                               if n in net.state_dict()}, strict=True)
        target = dict(solver.ema.module.named_parameters())
        for name, value in averaged.items():
            target[name].copy_(value[i])
        solver.ema._count = ema._count
        solver.ema.n_updates.fill_(ema._count)


def fit_seeds(solvers: Sequence[Solver], data: Sequence[Tensor], *,
              rng_states: Sequence[Tensor] | None = None,
              callbacks: Sequence[TrainCallback | None] | None = None, progress: bool = False,
              log: Callable[[str], None] | None = None, networks: str = "auto",
              ) -> list[dict[str, Any] | DivergenceError]:
    """:func:`train_together` when the solvers allow it, else one solo ``fit`` per seed.

    Either way seed ``k`` starts from ``rng_states[k]`` (when given), so the fallback is
    exactly the solo runs.
    """
    reason = batch_support(solvers)
    if reason is None:
        return train_together(solvers, data, rng_states=rng_states, callbacks=callbacks,
                              progress=progress, networks=networks)
    if log is not None:
        log(f"training seeds one after another: {reason}")
    out: list[dict[str, Any] | DivergenceError] = []
    for i, (solver, z) in enumerate(zip(solvers, data, strict=True)):
        if rng_states is not None:
            _generator(solver.device).set_state(rng_states[i])
        try:
            stats = solver.fit(z, callback=callbacks[i] if callbacks else None,
                               progress=progress)
            out.append(stats | {"rng_state": _generator(solver.device).get_state()})
        except DivergenceError as err:
            out.append(err)
    return out
