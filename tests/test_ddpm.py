"""DDPM specifics: the strided grid, and the clip of the predicted x0 that keeps strided and
DDIM steps stable under the cosine schedule (sqrt(abar_T) ~ 5e-5)."""

from __future__ import annotations

import pytest
import torch

from genbench.core.solver import create_solver

DATA = torch.randn(512, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 0.3])
TINY = {"hidden": 32, "depth": 2, "steps": 30, "batch_size": 128, "warmup": 5,
        "sampler": "ddim", "sample_steps": 10}


def test_timestep_grid_is_strided_from_T_to_1():
    solver = create_solver("ddpm", 2, {"timesteps": 100, "sample_steps": 10})
    grid = solver.timestep_grid()
    assert grid[0] == 100 and grid[-1] == 1 and len(grid) == 10
    assert all(a > b for a, b in zip(grid, grid[1:], strict=False))


def test_clip_bounds_come_from_the_training_data():
    solver = create_solver("ddpm", 2, TINY)
    assert torch.isinf(solver.x0_low).all()  # unfitted: no clipping
    solver.fit(DATA)
    span = DATA.max(0).values - DATA.min(0).values
    torch.testing.assert_close(solver.x0_low, DATA.min(0).values - 0.1 * span)
    torch.testing.assert_close(solver.x0_high, DATA.max(0).values + 0.1 * span)


@pytest.mark.parametrize("clip", [True, False])
def test_ddim_samples_stay_in_the_data_box_only_with_the_clip(clip: bool):
    torch.manual_seed(0)
    solver = create_solver("ddpm", 2, {**TINY, "schedule": "cosine", "clip_x0": clip})
    solver.fit(DATA)  # barely trained: its eps error is what the clip must contain
    x = solver.sample(2000, generator=torch.Generator().manual_seed(1))
    inside = ((x >= solver.x0_low) & (x <= solver.x0_high)).all()
    # DDIM's last step returns its x0 prediction: clipped, every point is in the box; not
    # clipped, the 1/sqrt(abar_T) amplification throws points far outside it.
    assert bool(inside) is clip
    if not clip:
        assert float(x.abs().max()) > 10 * float(DATA.abs().max())
