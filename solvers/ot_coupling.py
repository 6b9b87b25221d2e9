"""Minibatch OT couplings off the critical path: the next step's plan runs during this step.

OT-CFM pairs each noise minibatch ``x0 ~ N(0, I)`` with a data minibatch ``x1`` by the exact
optimal-transport plan for the squared Euclidean cost (Tong et al., Sec. 3.2, "OT-CFM";
Pooladian et al., Sec. 4). For two equal batches with uniform weights the plan is a
permutation (Birkhoff-von Neumann: the network simplex returns a vertex of the polytope of
doubly stochastic matrices), so the pairs are ``(x0[i], x1[match[i]])``.

POT's network simplex (``ot.emd``) runs on the host and releases the GIL
(``emd_wrap`` is compiled with ``with nogil``: the extension calls ``PyEval_SaveThread``; see
``benchmarks/perf_time.py`` for the measurement), so a worker thread can solve step
``k + 1``'s plan while the main thread runs step ``k``'s network, optimiser and EMA: a
training step then costs about ``max(network, plan)`` instead of their sum.

:class:`OTPairStream` yields each step's training rows ``[x0 | x1[match]]``. It draws from
the global torch generator exactly what the synchronous loop draws, in the same order (the
data indices, then the noise; the loss then draws its times), so for a given seed it yields
the same pairs whether the plan is computed in the worker or inline. The draws for step
``k + 1`` are made when the loss calls :meth:`OTPairStream.kick`, after its own draws for
step ``k`` and before its network call.

References:
    Tong, Fatras, Malkin, Huguet, Zhang, Rector-Brooks, Wolf, Bengio, "Improving and
    Generalizing Flow-Based Generative Models with Minibatch Optimal Transport", TMLR 2024.
    Pooladian, Ben-Hamu, Domingo-Enrich, Amos, Lipman, Chen, "Multisample Flow Matching:
    Straightening Flows with Minibatch Couplings", ICML 2023.
    Flamary et al., "POT: Python Optimal Transport", JMLR 2021.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import ot
import torch
from torch import Tensor

__all__ = ["THREAD_PREFIX", "OTPairStream", "exact_match"]

THREAD_PREFIX = "genbench-ot-plan"


def exact_match(x0: Tensor, x1: Tensor, ready: Any = None) -> Tensor:
    """``match`` with ``(x0[i], x1[match[i]])`` the exact OT pairs of two equal batches.

    The squared-distance matrix is built on the batches' device and crosses to the host once
    (the designed host read of the exact coupling). ``ready``: on CUDA, an event recorded on
    the main stream after ``x0`` and ``x1`` were drawn; the copy then runs on a side stream
    and waits for those draws only, not for the network kernels queued after them.
    """
    if ready is not None:
        side = torch.cuda.Stream(device=x0.device)
        with torch.cuda.stream(side):
            side.wait_event(ready)
            cost = torch.cdist(x0, x1).square().to("cpu", torch.float64)
    else:
        cost = torch.cdist(x0, x1).square().detach().cpu().double()
    plan = ot.emd([], [], cost.numpy())
    match = torch.from_numpy(np.ascontiguousarray(plan.argmax(axis=1)))
    if x1.device.type == "cuda":
        match = match.pin_memory()  # so the copy back to the device does not block
    return match


class OTPairStream(Iterator[Tensor]):
    """Rows ``[x0 | x1[match]]`` of shape ``(batch, 2 dim)`` for ``steps`` training steps.

    ``prefetch=True`` solves the next step's plan in one worker thread (started here, ended
    by :meth:`close`, which :func:`genbench.core.training.train` calls even when a step
    raises); ``prefetch=False`` solves it inline, at the same point of the draw order. A plan
    the worker has not started when the step needs it is solved inline (``solved_inline``
    counts them), so a machine without a free core loses little against the inline loop.
    """

    def __init__(self, z: Tensor, batch: int, steps: int, *, prefetch: bool = True,
                 on_close: Callable[[], None] | None = None):
        if batch <= 0 or steps <= 0:
            raise ValueError(f"batch and steps must be positive, got {batch} and {steps}")
        self.z, self.batch, self.steps = z, batch, steps
        self._on_close = on_close
        self._given = 0
        self._armed = False
        self._closed = False
        self.solved_inline = 0  # plans taken back from a worker that had not started them
        self._pending: tuple[Tensor, Tensor, Future | Tensor, Any] | None = None
        self._pool = (ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_PREFIX)
                      if prefetch else None)

    def _draw_and_solve(self) -> tuple[Tensor, Tensor, Future | Tensor, Any]:
        # The synchronous loop's draws, in its order: data indices (training loop), noise (loss).
        x1 = self.z[torch.randint(self.z.shape[0], (self.batch,), device=self.z.device)]
        x0 = torch.randn_like(x1)
        if self._pool is None:
            return x0, x1, exact_match(x0, x1), None
        ready = None
        if x1.device.type == "cuda":
            ready = torch.cuda.Event()
            ready.record()
        return x0, x1, self._pool.submit(exact_match, x0, x1, ready), ready

    def kick(self) -> None:
        """Draw the next step's minibatch and start its plan (once per step; else a no-op)."""
        if self._armed:
            self._armed = False
            self._pending = self._draw_and_solve()

    def __next__(self) -> Tensor:
        if self._given >= self.steps or self._closed:
            raise StopIteration
        if self._pending is None:  # the first step, or a loss that did not kick
            self._pending = self._draw_and_solve()
        x0, x1, match, ready = self._pending
        self._pending = None
        if isinstance(match, Future):
            # A worker that has not started yet (its core is busy elsewhere) would add a
            # scheduling delay to the wait: take the plan back and solve it here instead.
            if match.cancel():
                self.solved_inline += 1
                match = exact_match(x0, x1, ready)
            else:
                match = match.result()
        self._given += 1
        self._armed = self._given < self.steps  # no draws beyond the last step
        return torch.cat([x0, x1[match.to(x1.device, non_blocking=True)]], dim=1)

    def close(self) -> None:
        """Stop the worker (waiting for a plan in progress) and detach from the solver."""
        self._armed = False
        self._closed = True
        self._pending = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self) -> OTPairStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a stream dropped without close() must not leak its thread
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
