"""JKO-iFlow: the exact Gaussian JKO step, a normalised density, greedy stopping, reloading."""

from __future__ import annotations

import math

import pytest
import torch

from genbench.core.config import ConfigError
from genbench.core.solver import Solver
from solvers.jko import JKOFlow

SMALL = {"hidden": 32, "depth": 2, "batch_size": 128, "lr": 5e-3, "warmup": 20,
         "ema_decay": 0.0, "log_every": 25}


def gaussian_entropy(dim: int) -> float:
    return 0.5 * dim * math.log(2 * math.pi * math.e)


def test_one_block_is_the_exact_jko_step_for_a_gaussian():
    # For N(mu, I) data, the JKO step of KL(. || N(0, I)) with step h is N(mu / (1 + h), I).
    torch.manual_seed(0)
    mu, h = torch.tensor([2.0, -1.5]), 1.0
    z = torch.randn(4000, 2) + mu
    solver = JKOFlow(2, SMALL | {"max_blocks": 1, "h0": h, "steps": 150, "tol": 0.0})
    stats = solver.fit(z)
    with torch.no_grad():
        pushed = solver._flow(z, inverse=False)[0]
    assert stats["n_blocks"] == 1
    assert torch.allclose(pushed.mean(0), mu / (1 + h), atol=0.1)
    assert torch.allclose(torch.cov(pushed.T), torch.eye(2), atol=0.15)
    # The block moves every point by about the same shift: its cost is the mean shift, and
    # the pushed law N(mu / (1 + h), I) sits |mu| / (1 + h) from N(0, I) in W2.
    expected = float(mu.norm() * h / (1 + h))
    assert stats["blocks"][0]["transport_cost"] == pytest.approx(expected, rel=0.1)
    assert stats["blocks"][0]["movement"] == pytest.approx(expected**2, rel=0.2)
    assert stats["blocks"][0]["gaussian_w2_to_normal"] == pytest.approx(
        float(mu.norm()) / (1 + h), abs=0.1)
    assert stats["blocks"][0]["h"] == h


def test_density_integrates_to_one_on_a_grid():
    torch.manual_seed(1)
    centers = torch.tensor([[-1.5, 0.0], [1.5, 0.5]])
    z = centers[torch.randint(2, (3000,))] + 0.5 * torch.randn(3000, 2)
    solver = JKOFlow(2, SMALL | {"max_blocks": 2, "steps": 60, "tol": 0.0, "h0": 1.0})
    solver.fit(z)
    assert int(solver.n_blocks) == 2
    side = torch.linspace(-6, 6, 49)
    grid = torch.cartesian_prod(side, side)
    cell = float(side[1] - side[0]) ** 2
    mass = float(solver.log_prob(grid).exp().sum()) * cell
    assert mass == pytest.approx(1.0, abs=0.03)


def test_standard_gaussian_data_stops_after_one_block_with_gaussian_nll():
    torch.manual_seed(2)
    z = torch.randn(4000, 2)
    solver = JKOFlow(2, SMALL | {"max_blocks": 4, "steps": 100, "tol": 0.01})
    stats = solver.fit(z)
    assert stats["n_blocks"] == 1  # the target is reached: the first step barely moves
    assert stats["blocks"][0]["relative_movement"] < 0.01
    nll = -float(solver.log_prob(torch.randn(2000, 2)).mean())
    assert nll == pytest.approx(gaussian_entropy(2), abs=0.1)


def test_blocks_follow_the_geometric_schedule_and_sampling_inverts_the_map(tmp_path):
    torch.manual_seed(3)
    z = 0.5 * torch.randn(2000, 2) + 1.0
    solver = JKOFlow(2, SMALL | {"max_blocks": 3, "steps": 40, "tol": 0.0, "h0": 0.5,
                                 "h_growth": 2.0})
    stats = solver.fit(z)
    assert [b["h"] for b in stats["blocks"]] == [0.5, 1.0, 2.0]
    for block in stats["blocks"]:
        assert block["gaussian_w2_to_normal"] >= 0 and block["transport_cost"] >= 0
        # The fixed-step training objective agrees with the accurate (dopri5) one.
        assert block["objective_train_integrator"] == pytest.approx(block["objective"], abs=0.02)
    assert stats["steps"] == 3 * 40
    assert [s for s, _ in stats["loss_curve"]][-1] == 3 * 40

    noise = torch.randn(500, 2)
    with torch.no_grad():
        back = solver._flow(solver._flow(noise, inverse=True)[0], inverse=False)[0]
    assert torch.allclose(back, noise, atol=1e-3)

    path = tmp_path / "jko.pt"
    solver.save(path)
    loaded = Solver.load(path)
    assert isinstance(loaded, JKOFlow) and int(loaded.n_blocks) == 3
    gen = [torch.Generator().manual_seed(7) for _ in range(2)]
    assert torch.equal(solver.sample(100, generator=gen[0]), loaded.sample(100, generator=gen[1]))


@pytest.mark.parametrize("scale", [0.0, 0.5, 1.0])
def test_warm_start_keeps_the_previous_features_and_scales_the_output(monkeypatch, scale):
    # Block 1 starts from block 0's averaged weights with its output layer times
    # warm_scale: the same hidden features, the field scaled (0: exactly the identity map).
    import solvers.jko as jko

    seen: dict[str, torch.Tensor] = {}
    probe = torch.randn(64, 2, generator=torch.Generator().manual_seed(5))

    def spy(solver, x, **kwargs):
        if solver._active == 1:
            previous, current = solver.emas[0].module, solver.blocks[1]
            with torch.no_grad():
                seen["previous"], seen["current"] = previous(probe, 0.01), current(probe, 0.01)
            seen["same_features"] = torch.tensor(all(
                torch.equal(a, b) for a, b in zip(previous.layers[:-1].parameters(),
                                                  current.layers[:-1].parameters(), strict=True)))
        return original(solver, x, **kwargs)

    original = jko.train
    monkeypatch.setattr(jko, "train", spy)
    torch.manual_seed(4)
    solver = JKOFlow(2, SMALL | {"max_blocks": 2, "steps": 20, "tol": 0.0,
                                 "warm_scale": scale})
    solver.fit(0.5 * torch.randn(500, 2) + 1.0)
    assert bool(seen["same_features"])
    assert seen["previous"].abs().max() > 1e-3  # block 0 is not the zero field
    assert torch.allclose(seen["current"], scale * seen["previous"], atol=1e-6)


def test_unfitted_solver_is_the_standard_gaussian():
    solver = JKOFlow(2, SMALL)
    x = torch.randn(10, 2)
    assert torch.allclose(solver.log_prob(x), -0.5 * x.pow(2).sum(1) - math.log(2 * math.pi))
    assert solver.sample(5, generator=torch.Generator().manual_seed(0)).shape == (5, 2)


@pytest.mark.parametrize(
    "bad",
    [{"tol": -1.0}, {"h0": 0.0}, {"h_growth": -1.0}, {"max_blocks": 0},
     {"train_method": "dopri5"}, {"train_trace": "skilling"}, {"sample_method": "leapfrog"},
     {"warm_scale": -0.1}, {"warm_scale": 1.5}],
)
def test_bad_config_is_rejected_with_its_name(bad):
    key = next(iter(bad))
    with pytest.raises(ConfigError, match=key):
        JKOFlow(2, bad)
