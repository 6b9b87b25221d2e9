"""The shared ODE module and the two ODE solvers (pfode, cfm): exactness and densities.

The solver checks train tiny networks for a few hundred steps: they test that samples and
``log_prob`` describe one normalised distribution and that a Gaussian target is learned,
not benchmark quality (the quality bar is measured by the benchmarks).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from solvers.cfm import CFM, ot_pairs
from solvers.ode import FIXED_METHODS, ODE_METHODS, integrate, integrate_with_divergence
from solvers.pfode import PFODE

A = torch.tensor([[0.3, -1.0, 0.2], [0.5, -0.2, 0.0], [0.1, 0.4, -0.6]])
TINY = dict(hidden=64, depth=2, batch_size=256, log_every=50, warmup=20, lr=1e-2)


def linear_field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return x @ A.T


class CallCounter(nn.Module):
    """A smooth nonlinear field that counts its own calls."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 2))
        self.calls = 0

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.net(torch.cat([x, t.expand(x.shape[0], 1)], dim=1))


# -- solvers.ode ------------------------------------------------------------------------
@pytest.mark.parametrize("method", ODE_METHODS)
def test_nfe_counts_real_field_calls(method):
    field = CallCounter()
    steps = 7 if method in FIXED_METHODS else None
    x1, nfe = integrate(field, torch.randn(5, 2), 0.0, 1.0, method=method, steps=steps)
    assert nfe == field.calls > 0
    assert x1.shape == (5, 2) and torch.isfinite(x1).all()
    if method == "euler":
        assert nfe == 7


@pytest.mark.parametrize("method", ["dopri5", "bosh3", "rk4"])
@pytest.mark.parametrize(("t0", "t1"), [(0.0, 1.0), (1.0, 0.001)])
def test_field_is_never_called_outside_the_interval(method, t0, t1):
    """Adaptive steps must not overshoot: a VP score is singular just below t_eps."""
    seen: list[float] = []

    def field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(float(t))
        return -x / (t + 1e-3)  # stiff near 0, so steps vary in size

    integrate(field, torch.randn(4, 2), t0, t1, method=method, steps=9)
    assert min(t0, t1) <= min(seen) and max(seen) <= max(t0, t1)


@pytest.mark.parametrize(("t0", "t1"), [(0.0, 1.0), (1.0, 0.25)])
def test_linear_field_flow_and_divergence_are_exact(t0, t1):
    x0 = torch.randn(6, 3, dtype=torch.float64)
    field = lambda x, t: x @ A.T.double()  # noqa: E731
    with torch.no_grad():  # the exact trace must enable grad itself
        x1, div, nfe = integrate_with_divergence(field, x0, t0, t1, rtol=1e-9, atol=1e-9)
    expected = x0 @ torch.linalg.matrix_exp(A.double() * (t1 - t0)).T
    torch.testing.assert_close(x1, expected, rtol=1e-6, atol=1e-6)
    # div(A x) = trace(A) everywhere: the integral is exact whatever the path.
    torch.testing.assert_close(div, torch.full((6,), float(A.trace()) * (t1 - t0),
                                               dtype=torch.float64))
    assert nfe > 0 and not div.requires_grad


def test_hutchinson_is_unbiased_for_the_exact_trace():
    field = CallCounter()
    x0 = torch.randn(1, 2).expand(20000, 2).contiguous()
    with torch.no_grad():
        _, exact, _ = integrate_with_divergence(field, x0, 0.0, 1.0, method="rk4", steps=8)
        gen = torch.Generator().manual_seed(0)
        _, estimate, _ = integrate_with_divergence(field, x0, 0.0, 1.0, method="rk4", steps=8,
                                                   trace="hutchinson", generator=gen)
    # Identical rows, so the exact values agree and the probes alone make the spread.
    assert torch.allclose(exact, exact[0])
    stderr = estimate.std() / math.sqrt(len(estimate))
    assert estimate.std() > 0
    assert abs(estimate.mean() - exact[0]) < 4 * stderr + 1e-6


def test_divergence_is_differentiable_under_grad():
    field = CallCounter()
    _, div, _ = integrate_with_divergence(field, torch.randn(8, 2), 0.0, 1.0, method="euler",
                                          steps=4, trace="hutchinson")
    div.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in field.parameters())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"method": "leapfrog"}, "unknown ODE method"), ({"method": "euler"}, "needs steps"),
     ({"method": "rk4", "steps": 0}, "needs steps"), ({"rtol": 0.0}, "positive")],
)
def test_bad_ode_options_fail_clearly(kwargs, match):
    with pytest.raises(ValueError, match=match):
        integrate(linear_field, torch.randn(2, 3), 0.0, 1.0, **kwargs)


# -- minibatch OT coupling --------------------------------------------------------------
def test_ot_pairs_recover_a_hidden_matching():
    torch.manual_seed(0)
    x0 = torch.randn(64, 2)
    perm = torch.randperm(64)
    x1 = x0[perm] + 0.01  # the optimal plan is this permutation
    a, b = ot_pairs(x0, x1)
    assert a.shape == b.shape == (64, 2)
    torch.testing.assert_close(a, x0)  # a full batch: every noise row used once, in order
    torch.testing.assert_close(b - a, torch.full_like(a, 0.01))
    a, b = ot_pairs(x0, x1, n=200)  # other sizes resample pairs from the plan
    assert a.shape == b.shape == (200, 2)
    torch.testing.assert_close(b - a, torch.full_like(a, 0.01))


# -- the solvers ------------------------------------------------------------------------
CENTRES = torch.tensor([[1.5, 0.5], [-1.5, -0.5]])
SCALES = torch.tensor([0.5, 0.3])


def two_gaussians(n: int, seed: int) -> torch.Tensor:
    """Two separated anisotropic modes: learnable in a few hundred steps, far from N(0, I)."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(2, (n,), generator=gen)
    return CENTRES[idx] + SCALES * torch.randn(n, 2, generator=gen)


SOLVERS = [
    pytest.param(PFODE, {"steps": 400}, id="pfode"),
    pytest.param(CFM, {"steps": 300, "coupling": "independent"}, id="cfm-independent"),
    pytest.param(CFM, {"steps": 300, "coupling": "ot", "batch_size": 128, "sigma": 0.05},
                 id="cfm-ot"),
]


@pytest.mark.parametrize(("cls", "config"), SOLVERS)
def test_density_integrates_to_one(cls, config):
    """Midpoint-rule sum of exp(log_prob) on [-5, 5]^2 with spacing 0.25.

    The target's mass outside the box is below 1e-6 (its modes sit 3.5 / 0.3 = 11 and
    (5 - 1.5) / 0.5 = 7 standard deviations from the edges); a briefly trained flow is a
    smooth push-forward of N(0, I), so its own tails beyond +-5 are negligible too, and the
    midpoint rule's error, h^2/24 * int |lap q|, stays under 1% for features of width 0.3;
    the ODE is solved to rtol 1e-5 (measured: the sum is 1.000 to 4 digits). A 2% tolerance
    leaves room for these, while a wrong sign or a missing divergence term is off by far
    more. The density must also have learned the target: on target points it beats
    N(0, I) by over half a nat (measured: 1.0 to 1.6 nats).
    """
    torch.manual_seed(0)
    solver = cls(2, TINY | config)
    solver.fit(two_gaussians(4000, seed=0))
    h = 0.25
    axis = torch.arange(-5 + h / 2, 5, h)
    grid = torch.cartesian_prod(axis, axis)
    mass = float(solver.log_prob(grid).exp().sum() * h * h)
    assert abs(mass - 1) < 0.02, mass
    target = two_gaussians(500, seed=1)
    gaussian = -0.5 * (target.pow(2).sum(1) + 2 * math.log(2 * math.pi))
    assert solver.log_prob(target).mean() > gaussian.mean() + 0.5


@pytest.mark.parametrize(("cls", "config"), SOLVERS)
def test_gaussian_target_nll_matches_the_gaussian(cls, config):
    """Fitted to N(0, I), the mean NLL on test points approaches d/2 log(2 pi e).

    Compared on the same test points with the exact Gaussian's NLL, so the sampling noise
    of the test set (std ~0.03 at n=1000) cancels; what is left is KL(N(0,I) || q), which a
    reasonable fit holds well under 0.05 nats (measured: 0.001 to 0.006).
    """
    torch.manual_seed(1)
    solver = cls(2, TINY | config)
    solver.fit(torch.randn(4000, 2))
    test = torch.randn(1000, 2, generator=torch.Generator().manual_seed(2))
    nll = -float(solver.log_prob(test).mean())
    exact = float(0.5 * (test.pow(2).sum(1) + 2 * math.log(2 * math.pi)).mean())
    assert abs(nll - exact) < 0.05, (nll, exact)
    assert abs(nll - math.log(2 * math.pi * math.e)) < 0.15


def test_reflow_round_trains_on_generated_pairs():
    torch.manual_seed(0)
    solver = CFM(2, TINY | {"steps": 100, "coupling": "independent", "rectified": 1,
                            "reflow_steps": 60, "reflow_pairs": 500, "method": "euler",
                            "sample_steps": 10})
    logged: list[int] = []
    stats = solver.fit(two_gaussians(1000, seed=0), callback=lambda step, _: logged.append(step))
    assert len(stats["reflow"]) == 1 and stats["reflow"][0]["steps"] == 60
    assert logged == sorted(set(logged)) and logged[-1] == 160  # trackers need rising steps
    assert stats["reflow"][0]["pair_nfe"] > 10  # pairs from dopri5, not the 10-step sampler
    assert not solver._reflow
    assert torch.isfinite(solver.sample(50, generator=torch.Generator().manual_seed(0))).all()


def test_pfode_nfe_follows_the_method():
    torch.manual_seed(0)
    solver = PFODE(2, TINY | {"steps": 20, "sampler": "ode", "method": "rk4", "sample_steps": 5})
    solver.fit(torch.randn(256, 2))
    solver.sample(10, generator=torch.Generator().manual_seed(0))
    assert solver.nfe == 20  # four stages per rk4 step
