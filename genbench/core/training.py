"""The one training loop shared by every minibatch solver.

AdamW with linear warm-up and optional cosine decay, gradient clipping, an exponential
moving average of the weights (:class:`EMA`) used for sampling, a progress
bar, and divergence detection. The loss is read back to the host only every
``log_every`` steps, so the hot loop never waits on the device.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from genbench.core.errors import DivergenceError
from genbench.core.progress import bar as progress_bar

TrainCallback = Callable[[int, dict[str, float]], None]


class Trainable(Protocol):
    """What the loop needs of a solver (:class:`genbench.core.solver.Solver` is one); a
    protocol, so this module does not import the contract that imports it."""

    config: Any  # a SolverConfig
    name: str
    ema: Any

    @property
    def device(self) -> torch.device: ...

    def loss(self, z: Tensor) -> Tensor: ...

    def trainable_module(self) -> nn.Module: ...

    def minibatches(self, z: Tensor, batch: int, steps: int) -> Iterator[Tensor]: ...

    def train(self, mode: bool = True) -> Any: ...


__all__ = ["EMA", "TrainCallback", "Trainable", "make_ema", "make_optimizer",
           "random_minibatches", "train"]


def random_minibatches(z: Tensor, batch: int, steps: int) -> Iterator[Tensor]:
    """``steps`` minibatches of ``batch`` rows of ``z`` drawn uniformly with replacement."""
    n = z.shape[0]
    for _ in range(steps):
        yield z[torch.randint(n, (batch,), device=z.device)]


def make_optimizer(
    params: Any, config: Any, steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW and its schedule (warm-up, then constant or cosine down to 5% of ``lr``)."""
    params = list(params)
    try:  # one fused kernel per step instead of a loop of small ones (0.48 -> 0.20 ms/step)
        opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay,
                                fused=True)
    except (RuntimeError, TypeError):  # older torch or a device without the fused kernel
        opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(1, min(config.warmup, steps // 10))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.lr_schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


class EMA(nn.Module):
    """Exponential moving average of a module's weights, for sampling.

    The decay warms up as ``min(decay, (1 + n) / (10 + n))``: without it a short run samples
    from weights still close to their random initialisation (after 200 steps a plain 0.999
    average is 82% initial weights). The update count lives in Python, so an update never
    reads back from the device (``torch.optim.swa_utils.AveragedModel`` checks its count
    on the device every step, a host sync per training step on GPU).
    """

    def __init__(self, module: nn.Module, decay: float):
        super().__init__()
        self.module = copy.deepcopy(module).requires_grad_(False)
        self.decay = decay
        self.register_buffer("n_updates", torch.zeros((), dtype=torch.long))
        self._count = 0

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        weight = 1.0 - min(self.decay, (1.0 + self._count) / (10.0 + self._count))
        pairs = zip([*self.module.parameters(), *self.module.buffers()],
                    [*model.parameters(), *model.buffers()], strict=True)
        floats, others = [], []
        for avg, cur in pairs:
            (floats if avg.is_floating_point() else others).append((avg, cur.detach()))
        # One multi-tensor kernel for every float tensor (0.083 -> 0.028 ms/step). The lists
        # are rebuilt each step on purpose: moving a module to a device replaces its buffers.
        torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], weight)
        for avg, cur in others:
            avg.copy_(cur)
        self._count += 1
        self.n_updates.fill_(self._count)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._count = int(self.n_updates)  # once per load, not per step

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)


def make_ema(module: nn.Module, decay: float) -> EMA:
    """An :class:`EMA` copy of ``module`` (``decay=0`` keeps the latest weights)."""
    return EMA(module, decay)


def train(
    solver: Trainable,
    z: Tensor,
    *,
    steps: int,
    callback: TrainCallback | None = None,
    progress: bool = False,
    desc: str | None = None,
) -> dict[str, Any]:
    """Optimise ``solver.loss`` on minibatches of ``z``; update ``solver.ema``.

    Returns ``{"steps", "final_loss", "loss_curve": [[step, loss], ...], "train_seconds"}``.
    Raises :class:`DivergenceError` as soon as a logged loss is not finite.
    """
    cfg = solver.config
    module = solver.trainable_module()
    opt, sched = make_optimizer(module.parameters(), cfg, steps)
    n = z.shape[0]
    batch = min(cfg.batch_size, n)
    curve: list[list[float]] = []
    bar = progress_bar(steps, desc=desc or f"train {solver.name}", enabled=progress,
                       mininterval=0.5)
    start = time.perf_counter()
    solver.train()
    batches = solver.minibatches(z, batch, steps)
    try:
        _loop(solver, module, batches, opt, sched, steps, curve, callback, bar)
    finally:  # a prefetching batch source stops its worker even when a step raises
        close = getattr(batches, "close", None)
        if close is not None:
            close()
        bar.close()
    return {
        "steps": steps,
        "final_loss": curve[-1][1] if curve else float("nan"),
        "loss_curve": curve,
        "train_seconds": time.perf_counter() - start,
    }


def _loop(solver: Trainable, module: nn.Module, batches: Iterator[Tensor],
          opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler, steps: int,
          curve: list[list[float]], callback: TrainCallback | None, bar: Any) -> None:
    cfg = solver.config
    running = torch.zeros((), device=solver.device)
    since = 0
    for step in range(1, steps + 1):
        loss = solver.loss(next(batches))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        solver.ema.update_parameters(module)
        running += loss.detach()
        since += 1
        if step % cfg.log_every == 0 or step == steps:
            value = float(running) / since  # the only host sync, once per log_every steps
            running.zero_()
            since = 0
            if not math.isfinite(value):
                raise DivergenceError(
                    f"solver {solver.name!r}: non-finite training loss ({value}) by step {step}; "
                    "lower lr, raise grad_clip strictness, or check the data scale"
                )
            curve.append([step, value])
            bar.set_postfix(loss=f"{value:.4f}", refresh=False)
            if callback is not None:
                callback(step, {"loss": value, "lr": sched.get_last_lr()[0]})
        bar.update(1)
