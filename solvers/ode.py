"""ODE integration shared by the flow solvers, with honest NFE counts and log-densities.

:func:`integrate` solves ``dx/dt = field(x, t)`` with :func:`torchdiffeq.odeint`;
:func:`integrate_with_divergence` also carries ``int div field dt`` along the path, the
quantity the instantaneous change of variables needs (``d/dt log p_t(x(t)) = -div f``).
The divergence is exact (one backward pass per dimension) or Hutchinson's estimate with
Rademacher probes fixed over the whole path (one backward pass). Both return the number
of field evaluations, counted by a wrapper around the field (so the adaptive solvers'
rejected steps and initial step-size probe are included), never derived from a step count.

Fields are called as ``field(x, t)`` with ``x`` of shape ``(n, d)`` and ``t`` a 0-d tensor,
the signature of :class:`solvers.nets.TimeMLP`.

References:
    Chen, Rubanova, Bettencourt, Duvenaud, "Neural Ordinary Differential Equations",
    NeurIPS 2018 (torchdiffeq; the instantaneous change of variables).
    Grathwohl, Chen, Bettencourt, Sutskever, Duvenaud, "FFJORD: Free-form Continuous
    Dynamics for Scalable Reversible Generative Models", ICLR 2019 (Hutchinson's trace).
    Hutchinson, "A stochastic estimator of the trace of the influence matrix for Laplacian
    smoothing splines", 1989.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn
from torchdiffeq import odeint

from genbench.core.budget import BudgetConfig, fixed_step_budget
from genbench.core.progress import TimeBar, progress_enabled
from genbench.core.solver import Solver, SolverConfig

__all__ = [
    "ADAPTIVE_METHODS",
    "FIXED_METHODS",
    "ODE_METHODS",
    "TRACE_ESTIMATORS",
    "Field",
    "ODEFlowSolver",
    "ODESamplerConfig",
    "check_ode_options",
    "flow_log_prob",
    "integrate",
    "integrate_with_divergence",
]

# A time-dependent vector field ``field(x, t)``: every ODE and SDE field in ``solvers`` takes
# the state first (torchdiffeq's and torchsde's ``(t, x)`` order is adapted at their wrappers).
Field = Callable[[Tensor, Tensor], Tensor]

ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "adaptive_heun")
FIXED_METHODS = ("euler", "midpoint", "rk4")
ODE_METHODS = ADAPTIVE_METHODS + FIXED_METHODS
TRACE_ESTIMATORS = ("exact", "hutchinson")
TRACE_CHOICES = ("auto",) + TRACE_ESTIMATORS


class _CountedField(nn.Module):
    """``torchdiffeq`` calls ``f(t, y)``; this calls ``field(x, t)`` and counts the calls."""

    def __init__(self, field: Field, on_call: Callable[[Tensor], None] | None = None):
        super().__init__()
        self.field = field
        self.calls = 0
        self.on_call = on_call

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        self.calls += 1
        if self.on_call is not None:
            self.on_call(t)
        return self.field(x, t)


class _FieldWithDivergence(nn.Module):
    """Augmented dynamics ``(x, l) -> (field(x, t), div field(x, t))``, counting calls.

    Under a no-grad caller the divergence is still taken by autograd (grad is enabled
    locally) and the results are detached; under a grad-enabled caller (training through
    the solve, e.g. JKO blocks) the graph is kept (``create_graph``) so the loss can be
    differentiated through the divergence.
    """

    def __init__(self, field: Field, probe: Tensor | None,
                 on_call: Callable[[Tensor], None] | None = None):
        super().__init__()
        self.field = field
        self.probe = probe
        self.calls = 0
        self.on_call = on_call

    def forward(self, t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        self.calls += 1
        if self.on_call is not None:
            self.on_call(t)
        x = state[0]
        keep_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            dx = self.field(x, t)
            div = self._divergence(dx, x, keep_graph)
        if not keep_graph:
            dx, div = dx.detach(), div.detach()
        return dx, div

    def _divergence(self, dx: Tensor, x: Tensor, keep_graph: bool) -> Tensor:
        if self.probe is not None:
            (vjp,) = torch.autograd.grad(dx, x, self.probe, create_graph=keep_graph)
            return (vjp * self.probe).sum(dim=1)
        div = torch.zeros(x.shape[0], dtype=dx.dtype, device=dx.device)
        dims = x.shape[1]
        for i in range(dims):
            (row,) = torch.autograd.grad(dx[:, i].sum(), x, create_graph=keep_graph,
                                         retain_graph=keep_graph or i < dims - 1)
            div = div + row[:, i]
        return div


@contextmanager
def _time_bar(t0: float, t1: float, desc: str) -> Iterator[Callable[[Tensor], None] | None]:
    """A progress callback for the field's calls, only inside a progress scope (sampling and
    scoring; never the solves inside training): reading ``t`` syncs a GPU."""
    if not progress_enabled():
        yield None
        return
    with TimeBar(t0, t1, desc=desc) as progress:
        yield progress.reach


def _check(x0: Tensor, t0: float, t1: float, method: str, steps: int | None,
           rtol: float, atol: float) -> None:
    if not isinstance(x0, Tensor) or x0.ndim != 2:
        shape = tuple(x0.shape) if isinstance(x0, Tensor) else type(x0).__name__
        raise ValueError(f"x0 must be a tensor of shape (n, d), got {shape}")
    if method not in ODE_METHODS:
        raise ValueError(f"unknown ODE method {method!r}; choose one of {ODE_METHODS}")
    if method in FIXED_METHODS and (
        not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0
    ):
        raise ValueError(
            f"fixed-step method {method!r} needs steps, a positive int, got {steps!r}"
        )
    if float(t0) == float(t1):
        raise ValueError(f"t0 and t1 must differ, got t0 = t1 = {t0}")
    if rtol <= 0 or atol <= 0:
        raise ValueError(f"rtol and atol must be positive, got rtol={rtol}, atol={atol}")


def _solve(func: nn.Module, y0: Tensor | tuple[Tensor, ...], t0: float, t1: float,
           method: str, steps: int | None, rtol: float, atol: float,
           like: Tensor) -> Tensor | tuple[Tensor, ...]:
    # linspace from Python floats (exact endpoints) instead of torch.tensor([t0, t1]): a
    # host-to-device copy would wait for the GPU on every solve, i.e. every JKO training step.
    t0, t1 = float(t0), float(t1)
    times = torch.linspace(t0, t1, 2, dtype=like.dtype, device=like.device)
    options = {}
    if method in FIXED_METHODS:
        # An exact uniform grid: torchdiffeq's step_size option rounds with ceil() and can
        # add a sliver of a step; only the endpoint is stored either way. torchdiffeq calls
        # this with the original (unflipped) times, so the floats are read from the closure.
        def grid(_func: object, _y0: object, t: Tensor) -> Tensor:
            return torch.linspace(t0, t1, steps + 1, dtype=t.dtype, device=t.device)

        options["grid_constructor"] = grid
    else:
        # Without it the last adaptive step overshoots t1 and is interpolated back, calling
        # the field beyond the interval (t < t_eps or t > 1), where a VP-SDE's score blows up.
        options["step_t"] = times[1:]
    solution = odeint(func, y0, times, method=method, rtol=rtol, atol=atol, options=options)
    if isinstance(solution, tuple):
        return tuple(s[-1] for s in solution)
    return solution[-1]


def integrate(
    field: Field,
    x0: Tensor,
    t0: float,
    t1: float,
    *,
    method: str = "dopri5",
    steps: int | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> tuple[Tensor, int]:
    """Solve ``dx/dt = field(x, t)`` from ``x(t0) = x0`` to ``t1`` (either direction).

    ``method`` is one of :data:`ODE_METHODS`; the fixed-step ones (:data:`FIXED_METHODS`)
    take ``steps`` equal steps, the adaptive ones use ``rtol``/``atol`` and ignore
    ``steps``. Returns ``(x(t1), nfe)`` with ``nfe`` the number of calls of ``field``.
    """
    _check(x0, t0, t1, method, steps, rtol, atol)
    with _time_bar(t0, t1, "ODE solve") as reach:
        func = _CountedField(field, reach)
        x1 = _solve(func, x0, t0, t1, method, steps, rtol, atol, like=x0)
    return x1, func.calls


def integrate_with_divergence(
    field: Field,
    x0: Tensor,
    t0: float,
    t1: float,
    *,
    method: str = "dopri5",
    steps: int | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    trace: str = "exact",
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, int]:
    """Solve the ODE and integrate the field's divergence along each path.

    Returns ``(x(t1), int_{t0}^{t1} div field(x(t), t) dt, nfe)``, the integral of shape
    ``(n,)`` (negative of the forward integral when ``t1 < t0``). ``trace="exact"`` takes
    one backward pass per dimension; ``trace="hutchinson"`` uses one Rademacher probe per
    row, drawn from ``generator`` and kept fixed over the path (unbiased, one backward).
    Works under ``torch.no_grad()`` callers; under grad-enabled ones the result is
    differentiable.
    """
    _check(x0, t0, t1, method, steps, rtol, atol)
    if trace not in TRACE_ESTIMATORS:
        raise ValueError(f"unknown trace estimator {trace!r}; choose one of {TRACE_ESTIMATORS}")
    probe = None
    if trace == "hutchinson":
        bits = torch.randint(0, 2, x0.shape, generator=generator, device=x0.device)
        probe = bits.to(x0.dtype) * 2 - 1
    start = (x0, torch.zeros(x0.shape[0], dtype=x0.dtype, device=x0.device))
    with _time_bar(t0, t1, "ODE solve with divergence") as reach:
        func = _FieldWithDivergence(field, probe, reach)
        x1, divergence = _solve(func, start, t0, t1, method, steps, rtol, atol, like=x0)
    return x1, divergence, func.calls


def check_ode_options(method: str, steps: int, rtol: float, atol: float, trace: str) -> None:
    """Validate a solver config's ODE keys up front (raises ``ValueError`` naming the key)."""
    if method not in ODE_METHODS:
        raise ValueError(f"method must be one of {ODE_METHODS}, got {method!r}")
    if steps <= 0:
        raise ValueError(f"sample_steps must be positive, got {steps}")
    if rtol <= 0 or atol <= 0:
        raise ValueError(f"rtol and atol must be positive, got rtol={rtol}, atol={atol}")
    if trace not in TRACE_CHOICES:
        raise ValueError(f"trace must be one of {TRACE_CHOICES}, got {trace!r}")


def flow_log_prob(
    field: Field,
    x: Tensor,
    t_data: float,
    t_prior: float,
    *,
    method: str = "dopri5",
    steps: int | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    trace: str = "auto",
    exact_max_dim: int = 16,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, int]:
    """Log-density of a flow that carries ``N(0, I)`` at ``t_prior`` to the data at ``t_data``.

    ``log q(x) = log N(x(t_prior); 0, I) + int_{t_data}^{t_prior} div field dt``, the
    instantaneous change of variables integrated from the data towards the prior.
    ``trace="auto"`` is exact up to ``exact_max_dim`` dimensions and Hutchinson beyond.
    Returns ``(log q(x), nfe)``.
    """
    if trace not in TRACE_CHOICES:
        raise ValueError(f"trace must be one of {TRACE_CHOICES}, got {trace!r}")
    if trace == "auto":
        trace = "exact" if x.shape[1] <= exact_max_dim else "hutchinson"
    steps = steps if method in FIXED_METHODS else None
    z, divergence, nfe = integrate_with_divergence(
        field, x, t_data, t_prior, method=method, steps=steps, rtol=rtol, atol=atol,
        trace=trace, generator=generator,
    )
    prior = -0.5 * (z.pow(2).sum(dim=1) + z.shape[1] * math.log(2 * math.pi))
    return prior + divergence, nfe


@dataclass
class ODESamplerConfig(SolverConfig):
    """Sampling and likelihood keys shared by the solvers that integrate an ODE (pfode, cfm)."""

    method: str = "dopri5"  # dopri5 | dopri8 | bosh3 | adaptive_heun | euler | midpoint | rk4
    sample_steps: int = 100  # steps of the fixed-step methods (ignored by adaptive ones)
    rtol: float = 1e-5  # adaptive methods only
    atol: float = 1e-5
    trace: str = "auto"  # auto | exact | hutchinson (divergence in log_prob)
    exact_trace_max_dim: int = 16  # auto: exact trace up to this latent dimension
    trace_seed: int = 0  # seed of the Hutchinson probes (log_prob is deterministic)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ode_options(self.method, self.sample_steps, self.rtol, self.atol, self.trace)


class ODEFlowSolver(Solver):
    """A solver whose sampler is an ODE from ``N(0, I)`` at ``t_prior`` to data at ``t_data``.

    Subclasses define :meth:`velocity` and the two times; sampling and the exact
    ``log_prob`` (the change of variables along the same ODE, backwards) are shared, so
    every ODE key of :class:`ODESamplerConfig` means the same thing for each of them.
    """

    config: ODESamplerConfig
    has_density = True

    @classmethod
    def apply_budget(cls, config: ODESamplerConfig, budget: BudgetConfig) -> dict[str, Any]:
        """NFE = ``sample_steps`` times the calls per step of a fixed-step ``method``; an
        adaptive method is replaced by ``budget.ode_method``."""
        overrides = super().apply_budget(config, replace(budget, nfe=None))
        if budget.nfe is not None:
            overrides["method"], overrides["sample_steps"] = fixed_step_budget(
                budget.nfe, config.method, default_method=budget.ode_method,
                what=f"solver {cls.name!r}")
        return overrides
    sampling_keys = ("method", "sample_steps", "rtol", "atol", "trace", "exact_trace_max_dim",
                     "trace_seed")

    def velocity(self, x: Tensor, t: Tensor) -> Tensor:
        raise NotImplementedError

    @property
    def t_prior(self) -> float:
        raise NotImplementedError

    @property
    def t_data(self) -> float:
        raise NotImplementedError

    def _ode_kwargs(self) -> dict:
        cfg = self.config
        steps = cfg.sample_steps if cfg.method in FIXED_METHODS else None
        return dict(method=cfg.method, steps=steps, rtol=cfg.rtol, atol=cfg.atol)

    @torch.no_grad()
    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        prior = torch.randn(n, self.dim, generator=generator, device=self.device)
        x, self.nfe = integrate(self.velocity, prior, self.t_prior, self.t_data,
                                **self._ode_kwargs())
        return x

    @torch.no_grad()
    def _log_prob(self, z: Tensor) -> Tensor:
        cfg = self.config
        # Hutchinson probes from a fixed seed: log_prob is a deterministic function of z.
        generator = torch.Generator(device=z.device).manual_seed(cfg.trace_seed)
        log_q, _ = flow_log_prob(
            self.velocity, z, self.t_data, self.t_prior, trace=cfg.trace,
            exact_max_dim=cfg.exact_trace_max_dim, generator=generator, **self._ode_kwargs(),
        )
        return log_q
