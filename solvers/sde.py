"""A small torchsde wrapper: a diagonal-noise Ito SDE that counts its drift calls.

:class:`SDE` wraps a drift ``drift(x, t)`` and a diffusion ``diffusion(x, t)`` (same shape as
``x``: diagonal noise; the argument order of every field in ``solvers``) as the module
``torchsde.sdeint`` expects (``f(t, x)``, ``g(t, x)``), counting drift evaluations for
the NFE (the shape check sdeint makes before the first step is answered from memory, so it
costs no network call). :func:`integrate` runs ``torchsde.sdeint`` over the integer clock
``s = 0, 1, ..., steps`` with unit steps, so a fixed-step method takes exactly ``steps``
steps (a float grid ``t0 + k dt`` can round into one extra sliver of a step); callers map
``s`` to their own time by a change of variables. The Brownian path is a
``torchsde.BrownianInterval`` whose entropy is drawn from the caller's ``torch.Generator``,
so a seeded generator reproduces the samples exactly.

References:
    Li, Wong, Chen, Duvenaud, "Scalable Gradients for Stochastic Differential Equations",
    AISTATS 2020 (torchsde).
    Kidger, Foster, Li, Lyons, "Efficient and Accurate Gradients for Neural SDEs",
    NeurIPS 2021 (the Brownian Interval).
    Kloeden, Platen, "Numerical Solution of Stochastic Differential Equations", Springer 1992
    (Euler-Maruyama, Milstein and stochastic Runge-Kutta schemes).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchsde
from torch import Tensor, nn

from genbench.core.progress import TimeBar, progress_enabled
from solvers.ode import Field

__all__ = ["ITO_DIAGONAL_METHODS", "SDE", "integrate"]

# The torchsde methods whose solver class accepts Ito SDEs with diagonal noise (the others
# are Stratonovich-only); tests/test_lsb.py checks this tuple against torchsde itself.
ITO_DIAGONAL_METHODS = ("euler", "milstein", "srk")

# Methods that read the space-time Levy area of the Brownian motion.
_NEEDS_LEVY_AREA = {"srk": "space-time"}



class SDE(nn.Module):
    """``dx = drift(x, t) dt + diffusion(x, t) dW`` (Ito, diagonal noise); ``nfe`` counts drift
    calls."""

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, drift: Field, diffusion: Field):
        super().__init__()
        self.drift = drift
        self.diffusion = diffusion
        self.nfe = 0
        self._last: tuple[Tensor, Tensor] | None = None  # (state, drift at it)
        self.on_call: Callable[[Tensor], None] | None = None  # a progress bar's hook

    def f(self, t: Tensor, x: Tensor) -> Tensor:
        # torchsde.sdeint calls f(t0, x0) once to check shapes and the first step calls it
        # again on the same state object: remember the last call so that costs no network
        # call. The state is matched by identity and the time is not compared (a value
        # comparison reads the device; torchsde passes a fresh ``ts[0]`` each time): its Ito
        # solvers evaluate any one state object at a single time (tests/test_lsb.py checks
        # the cached and uncached paths agree for every method).
        last = self._last
        if last is not None and x is last[0]:
            return last[1]
        self.nfe += 1
        if self.on_call is not None:
            self.on_call(t)
        out = self.drift(x, t)
        self._last = (x, out)
        return out

    def g(self, t: Tensor, x: Tensor) -> Tensor:
        return self.diffusion(x, t)


def integrate(
    sde: SDE, x0: Tensor, steps: int, *, method: str = "euler", generator: torch.Generator
) -> Tensor:
    """Integrate ``sde`` from ``x0`` at ``s = 0`` to ``s = steps`` in ``steps`` unit steps.

    ``method`` is a torchsde method for Ito SDEs with diagonal noise
    (:data:`ITO_DIAGONAL_METHODS`). The Brownian motion is seeded from ``generator``.
    Returns the state at ``s = steps``, shape of ``x0``.
    """
    if method not in ITO_DIAGONAL_METHODS:
        raise ValueError(
            f"sde method {method!r} does not solve Ito SDEs with diagonal noise in torchsde; "
            f"allowed: {', '.join(ITO_DIAGONAL_METHODS)}"
        )
    if not isinstance(steps, int) or steps <= 0:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    entropy = int(torch.randint(2**31 - 1, (), generator=generator, device=generator.device))
    brownian = torchsde.BrownianInterval(
        t0=0.0, t1=float(steps), size=tuple(x0.shape), dtype=x0.dtype, device=x0.device,
        entropy=entropy, dt=1.0, levy_area_approximation=_NEEDS_LEVY_AREA.get(method, "none"),
    )
    ts = torch.tensor([0.0, float(steps)], dtype=x0.dtype, device=x0.device)
    if not progress_enabled():
        return torchsde.sdeint(sde, x0, ts, bm=brownian, method=method, dt=1.0)[-1]
    with TimeBar(0.0, float(steps), desc=f"SDE solve ({steps} steps)") as progress:
        sde.on_call = progress.reach
        try:
            return torchsde.sdeint(sde, x0, ts, bm=brownian, method=method, dt=1.0)[-1]
        finally:
            sde.on_call = None
