"""The Solver contract, checked for every registered solver (built-in and plugin).

Each solver is fitted once per module on a small 2-D sample at a tiny budget: these tests
check behaviour (shapes, determinism, persistence, errors), not quality, which the
benchmarks measure.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from genbench.core.config import ConfigError
from genbench.core.solver import CapabilityError, DataError, Solver, get_solver_class, list_solvers

DIM = 2
# Tiny budgets, applied where a solver has the field; extra per-solver settings keep each fit
# and sample within a second or two.
TINY = {"steps": 40, "hidden": 32, "depth": 2, "batch_size": 64, "log_every": 10,
        "warmup": 5}
FAST_SAMPLING = {"sample_steps": 10, "sde_steps": 10, "method": "euler", "max_blocks": 2,
                 "rectified": 0}


def tiny_config(cls: type[Solver]) -> dict:
    fields = {f.name: f for f in dataclasses.fields(cls.Config)}
    config = {}
    for key, value in {**TINY, **FAST_SAMPLING}.items():
        if key in fields and isinstance(value, type(fields[key].default)):
            config[key] = value
    return config


@pytest.fixture(scope="module", params=list_solvers())
def fitted(request):
    cls = get_solver_class(request.param)
    torch.manual_seed(0)
    data = torch.randn(512, DIM) * torch.tensor([1.0, 0.5]) + torch.tensor([0.5, -0.3])
    solver = cls(DIM, tiny_config(cls))
    stats = solver.fit(data)
    return solver, stats


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_fit_returns_statistics(fitted):
    solver, stats = fitted
    assert solver.fitted
    assert isinstance(stats, dict) and "train_seconds" in stats
    assert math.isfinite(stats.get("final_loss", 0.0))


def test_sample_shape_dtype_finite(fitted):
    solver, _ = fitted
    z = solver.sample(37, generator=_gen(0))
    assert z.shape == (37, DIM)
    assert z.dtype == torch.float32
    assert torch.isfinite(z).all()
    assert isinstance(solver.nfe, int) and solver.nfe > 0


def test_sampling_is_seed_deterministic(fitted):
    solver, _ = fitted
    a = solver.sample(64, generator=_gen(7))
    b = solver.sample(64, generator=_gen(7))
    c = solver.sample(64, generator=_gen(8))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_training_is_seed_deterministic(fitted):
    solver, _ = fitted
    cls = type(solver)
    data = torch.randn(256, DIM)
    samples = []
    for _ in range(2):
        torch.manual_seed(3)
        other = cls(DIM, tiny_config(cls) | {"steps": 10})
        other.fit(data)
        samples.append(other.sample(16, generator=_gen(1)))
    torch.testing.assert_close(samples[0], samples[1])


def test_save_load_round_trip(fitted, tmp_path):
    solver, _ = fitted
    path = tmp_path / "solver.pt"
    solver.save(path)
    loaded = Solver.load(path)
    assert type(loaded) is type(solver)
    assert loaded.config == solver.config and loaded.fitted
    torch.testing.assert_close(loaded.sample(32, generator=_gen(5)),
                               solver.sample(32, generator=_gen(5)))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (torch.zeros(10, DIM + 1), "shape"),
        (torch.zeros(10), "shape"),
        (torch.zeros(0, DIM), "empty"),
        (torch.tensor([[0.0, float("nan")]] * 4), "NaN"),
        (torch.tensor([[0.0, float("inf")]] * 4), "NaN or infinite"),
    ],
    ids=["wrong-dim", "1-d", "empty", "nan", "inf"],
)
def test_bad_training_data_is_rejected_clearly(fitted, data, expected):
    solver, _ = fitted
    with pytest.raises(DataError, match=expected) as info:
        solver.fit(data, steps=1)
    if expected == "shape":
        assert f"(n, {DIM})" in str(info.value)


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_bad_sample_size_is_rejected(fitted, n):
    solver, _ = fitted
    with pytest.raises(ValueError, match="positive int"):
        solver.sample(n)


def test_log_prob_matches_capability(fitted):
    solver, _ = fitted
    z = torch.randn(20, DIM)
    if type(solver).has_density:
        lp = solver.log_prob(z)
        assert lp.shape == (20,) and torch.isfinite(lp).all()
        with pytest.raises(DataError, match="shape"):
            solver.log_prob(torch.zeros(3, DIM + 2))
    else:
        with pytest.raises(CapabilityError, match="no density"):
            solver.log_prob(z)


def test_unknown_and_mistyped_config_keys_fail_clearly(fitted):
    cls = type(fitted[0])
    with pytest.raises(ConfigError, match="unknown key") as info:
        cls(DIM, {"stepz": 10})
    assert "steps" in str(info.value)  # the allowed keys are listed
    with pytest.raises(ConfigError, match="steps"):
        cls(DIM, {"steps": "many"})
    with pytest.raises(ConfigError, match="steps"):
        cls(DIM, {"steps": -1})
