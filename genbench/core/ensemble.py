"""Several seeds of one solver trained together as one batched model.

The networks of ``K`` solvers of one class and config (one per seed, each built after
``torch.manual_seed(seed)`` exactly as a solo run builds it) are stacked into one set of
parameters with a leading seed axis (:func:`torch.func.stack_module_state`), evaluated with
:func:`torch.vmap` over :func:`torch.func.functional_call` (on CPUs by default one call per
seed on slices of the stacked weights, see :func:`train_together`), and updated by one
optimiser step
for all (AdamW is elementwise, so stacking does not mix seeds; the gradient-norm clip and the
loss log are per seed). This is PyTorch's model ensembling recipe; for networks of this size a
training step is mostly per-call overhead, which the seeds then share.

Each seed keeps its own stream of random numbers. A step for seed ``k`` installs its generator
state, draws its minibatch (:meth:`Solver.minibatches`) and runs its :meth:`Solver.loss` once
with the network replaced by a recorder (no gradient) that keeps the network's inputs; the
recorded inputs of all seeds go through the batched network; then the loss runs again from
the same generator state with the network replaced by a replayer returning seed ``k``'s slice
of the batched output (the loss's own draws repeat exactly, so the replayed outputs answer the
same inputs). Seed ``k`` therefore sees the data order, noise and times of its solo run, from
its solo initialisation, and keeps its own EMA; only floating-point rounding differs (a
batched matmul sums in another order), so runs agree statistically, not bit for bit.

Requirements, declared by a solver with the class attribute (or property) ``batch_seeds``:
training is the shared loop over :meth:`Solver.loss` (no extra rounds after it), the loss's
random draws do not depend on the network's outputs, and the network is
:meth:`Solver.trainable_module`. ``ddpm``, ``pfode``, ``lsb`` and ``cfm`` (without reflow
rounds) qualify. ``jko`` does not: each block is trained through an ODE solve whose adaptive
step sizes depend on that seed's network, and blocks are added until a per-seed stopping rule
fires, so the seeds' computations have different shapes and lengths; its seeds train one
after another (``fit_seeds`` falls back to solo fits, and says so).

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

from genbench.core.solver import DivergenceError, Solver, TrainCallback
from genbench.core.training import make_ema, make_optimizer

__all__ = ["batch_support", "fit_seeds", "generator_state", "train_together"]


def batch_support(solvers: Sequence[Solver]) -> str | None:
    """None when these solvers can train as one batched model; otherwise why not."""
    if not solvers:
        return "no solvers given"
    first = solvers[0]
    name = first.name or type(first).__name__
    if not getattr(first, "batch_seeds", False):
        return (f"solver {name!r} cannot batch seeds (its training is not the shared loop over "
                "a simulation-free loss, or an option such as reflow adds rounds)")
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


class _Recorder(nn.Module):
    """Stands in for the network in the first pass: keeps the call's inputs, returns zeros."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, ...]] = []

    def forward(self, x: Tensor, *args: Any) -> Tensor:
        self.calls.append((x, *args))
        return torch.zeros_like(x)


class _Replayer(nn.Module):
    """Stands in for the network in the second pass: returns the batched outputs, in order."""

    def __init__(self, outputs: list[Tensor]) -> None:
        super().__init__()
        self.outputs = outputs
        self.i = 0

    def forward(self, *args: Any) -> Tensor:
        out = self.outputs[self.i]
        self.i += 1
        return out


def _net_slot(solver: Solver) -> str:
    net = solver.trainable_module()
    for key, module in solver._modules.items():
        if module is net:
            return key
    raise TypeError(f"solver {solver.name!r}: trainable_module() is not a direct submodule")


class _Swapped:
    """``with _Swapped(solver, slot, stand_in):`` the solver's network is the stand-in."""

    def __init__(self, solver: Solver, slot: str, stand_in: nn.Module):
        self.solver, self.slot, self.stand_in = solver, slot, stand_in

    def __enter__(self) -> None:
        self.saved = self.solver._modules[self.slot]
        self.solver._modules[self.slot] = self.stand_in

    def __exit__(self, *exc: object) -> None:
        self.solver._modules[self.slot] = self.saved


def _stack_args(calls: list[tuple[Any, ...]]) -> tuple[tuple[Any, ...], tuple[int | None, ...]]:
    """Stack one network call's arguments over seeds (tensors on a new axis 0)."""
    args, dims = [], []
    for values in zip(*calls, strict=True):
        if isinstance(values[0], Tensor):
            args.append(torch.stack(values))
            dims.append(0)
        else:  # a Python number, the same for every seed (e.g. a fixed time)
            args.append(values[0])
            dims.append(None)
    return tuple(args), tuple(dims)


class _Stacked(nn.Module):
    """The stacked parameters as one module, so one optimiser and one :class:`EMA` serve all."""

    def __init__(self, params: dict[str, Tensor]):
        super().__init__()
        self.names = list(params)
        self.values = nn.ParameterList([nn.Parameter(p.detach().clone()) for p in params.values()])

    def as_dict(self) -> dict[str, Tensor]:
        return dict(zip(self.names, self.values, strict=True))


def _network_outputs(net_call: Callable[..., Tensor], params: dict[str, Tensor],
                     buffers: dict[str, Tensor], recorders: list[_Recorder],
                     vectorise: bool) -> list[list[Tensor]]:
    """``out[seed][call]``: the seeds' networks on their recorded inputs, from the stacked
    weights; one ``vmap`` call per network call, or (``vectorise=False``) a loop over seeds
    on slices of the stacked weights (each seed's matmuls as in its solo run)."""
    k = len(recorders)
    out: list[list[Tensor]] = [[] for _ in range(k)]
    for c in range(len(recorders[0].calls)):
        if vectorise:
            args, dims = _stack_args([r.calls[c] for r in recorders])
            batched = torch.vmap(net_call, in_dims=(0, 0, *dims))(params, buffers, *args)
            for i in range(k):
                out[i].append(batched[i])
        else:  # unbind: its backward stacks the seeds' gradients in one copy per tensor
            p_seeds = {n: v.unbind(0) for n, v in params.items()}
            b_seeds = {n: v.unbind(0) for n, v in buffers.items()}
            for i, r in enumerate(recorders):
                out[i].append(net_call({n: v[i] for n, v in p_seeds.items()},
                                       {n: v[i] for n, v in b_seeds.items()}, *r.calls[c]))
    return out


def _clip_per_seed(grads: list[Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` for each seed separately (seed axis 0), without a host read."""
    norms = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads]).sum(0).sqrt()
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.ndim - 1))))


def train_together(solvers: Sequence[Solver], data: Sequence[Tensor], *,
                   rng_states: Sequence[Tensor] | None = None, steps: int | None = None,
                   callbacks: Sequence[TrainCallback | None] | None = None,
                   progress: bool = False, vectorise: bool | None = None,
                   ) -> list[dict[str, Any] | DivergenceError]:
    """Train ``solvers[k]`` on ``data[k]`` for every ``k`` as one batched model.

    ``vectorise``: evaluate the seeds' networks with one ``vmap`` call (default on GPUs,
    where a step of a small network is launch overhead), or one after another on slices of
    the stacked weights (default on CPUs: at the default sizes the matmuls dominate a step,
    and ``vmap``'s batched matmul plus separate bias add is ~25% slower there than one
    ``addmm`` per seed; the optimiser, clip and EMA steps are shared either way).

    ``rng_states[k]``: seed ``k``'s generator state at the start of training (default: the
    current state for every seed, which makes the seeds differ only by initialisation and
    data). Returns, per seed, :func:`genbench.core.training.train`'s statistics or the
    :class:`DivergenceError` a solo run would have raised; the solvers are left fitted.
    """
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
    if vectorise is None:
        vectorise = first.device.type == "cuda"
    states = list(rng_states) if rng_states is not None else [gen.get_state()] * k
    callbacks = list(callbacks) if callbacks is not None else [None] * k
    zs = []
    for solver, z in zip(solvers, data, strict=True):
        z = solver.check_data(z)
        solver.prepare(z)
        zs.append(z)
    slot = _net_slot(first)
    nets = [s.trainable_module() for s in solvers]
    params, buffers = stack_module_state(nets)
    stacked = _Stacked(params)
    template = copy.deepcopy(nets[0]).to("meta")
    ema = make_ema(stacked, cfg.ema_decay)
    ema._count = first.ema._count  # continue the solo EMAs' warm-up (all seeds equal)
    opt, sched = make_optimizer(stacked.parameters(), cfg, steps)

    def net_call(p: dict[str, Tensor], b: dict[str, Tensor], *args: Any) -> Tensor:
        return functional_call(template, (p, b), args)

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
            rows, recorders, mids = [], [], []
            for i, solver in enumerate(solvers):  # pass 1: draws and network inputs
                gen.set_state(states[i])
                rows.append(next(batches[i]))
                mids.append(gen.get_state())
                recorders.append(_Recorder())
                with torch.no_grad(), _Swapped(solver, slot, recorders[i]):
                    solver.loss(rows[i])
                states[i] = gen.get_state()
            outputs = _network_outputs(net_call, stacked.as_dict(), buffers, recorders,
                                       vectorise)
            losses = []
            for i, solver in enumerate(solvers):  # pass 2: the same draws, the real outputs
                gen.set_state(mids[i])
                with _Swapped(solver, slot, _Replayer(outputs[i])):
                    losses.append(solver.loss(rows[i]))
            loss = torch.stack(losses)
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
              log: Callable[[str], None] | None = None, vectorise: bool | None = None,
              ) -> list[dict[str, Any] | DivergenceError]:
    """:func:`train_together` when the solvers allow it, else one solo ``fit`` per seed.

    Either way seed ``k`` starts from ``rng_states[k]`` (when given), so the fallback is
    exactly the solo runs.
    """
    reason = batch_support(solvers)
    if reason is None:
        return train_together(solvers, data, rng_states=rng_states, callbacks=callbacks,
                              progress=progress, vectorise=vectorise)
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
