"""The one training loop shared by every minibatch solver.

AdamW with linear warm-up and optional cosine decay, gradient clipping, an exponential
moving average of the weights (``torch.optim.swa_utils``) used for sampling, a progress
bar, and divergence detection. The loss is read back to the host only every
``log_every`` steps, so the hot loop never waits on the device.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from genbench.solver import DivergenceError

if TYPE_CHECKING:
    from genbench.solver import Solver, SolverConfig, TrainCallback

__all__ = ["make_ema", "make_optimizer", "train"]


def make_optimizer(
    params: Any, config: SolverConfig, steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW and its schedule (warm-up, then constant or cosine down to 5% of ``lr``)."""
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


def make_ema(module: nn.Module, decay: float) -> AveragedModel:
    """An EMA copy of ``module`` (``decay=0`` keeps a plain copy of the latest weights)."""
    return AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def train(
    solver: Solver,
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
    running = torch.zeros((), device=z.device)
    since = 0
    bar = tqdm(total=steps, desc=desc or f"train {solver.name}", disable=not progress,
               leave=False, mininterval=0.5, dynamic_ncols=True)
    start = time.perf_counter()
    solver.train()
    for step in range(1, steps + 1):
        idx = torch.randint(n, (batch,), device=z.device)
        loss = solver.loss(z[idx])
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
                bar.close()
                raise DivergenceError(
                    f"solver {solver.name!r}: non-finite training loss ({value}) by step {step}; "
                    "lower lr, raise grad_clip strictness, or check the data scale"
                )
            curve.append([step, value])
            bar.set_postfix(loss=f"{value:.4f}", refresh=False)
            if callback is not None:
                callback(step, {"loss": value, "lr": sched.get_last_lr()[0]})
        bar.update(1)
    bar.close()
    return {
        "steps": steps,
        "final_loss": curve[-1][1] if curve else float("nan"),
        "loss_curve": curve,
        "train_seconds": time.perf_counter() - start,
    }
