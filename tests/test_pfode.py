"""pfode's own keys: validated up front, and each one changes what it names."""

from __future__ import annotations

import pytest
import torch

from solvers.pfode import PFODE

TINY = {"hidden": 16, "depth": 1, "steps": 5, "batch_size": 32, "warmup": 1}


@pytest.mark.parametrize(("key", "value", "message"), [
    ("time_sampling", "lognormal", "time_sampling must be one of"),
    ("sampler", "pc", "sampler must be one of"),
    ("sde_steps", 0, "sde_steps must be a positive int"),
    ("sde_steps", 2.5, "sde_steps"),  # refused by the typed schema, naming the key
    ("t_eps", 1e-4, "must be >= train_t_eps"),  # the net would be read where it never trained
])
def test_bad_keys_are_refused_naming_the_choices(key, value, message):
    with pytest.raises(ValueError, match=message):
        PFODE(2, TINY | {key: value})


def test_sampler_and_steps_are_used():
    torch.manual_seed(0)
    solver = PFODE(2, TINY | {"sde_steps": 7})
    solver.fit(torch.randn(64, 2))
    assert solver.config.sampler == "ancestral"
    ancestral = solver.sample(8, generator=torch.Generator().manual_seed(0))
    assert solver.nfe == 7
    solver.config.sampler = "sde"
    sde = solver.sample(8, generator=torch.Generator().manual_seed(0))
    assert solver.nfe == 7 and not torch.allclose(sde, ancestral)
    solver.config.sampler, solver.config.method, solver.config.sample_steps = "ode", "euler", 3
    ode = solver.sample(8, generator=torch.Generator().manual_seed(0))
    assert solver.nfe == 3 and not torch.allclose(sde, ode)


def test_time_sampling_changes_the_training_times():
    solver = PFODE(2, TINY)
    torch.manual_seed(0)
    logsnr = solver.training_times(10_000, torch.device("cpu"))
    solver.config.time_sampling = "uniform"
    uniform = solver.training_times(10_000, torch.device("cpu"))
    # uniform t on [1e-3, 1]: ~10 % below t = 0.1; uniform log-SNR on the linear schedule
    # between lambda(1) = -10.05 and lambda(1e-3) = 9.12: (9.12 - lambda(0.1) = 2.16) / 19.17
    assert abs(float((uniform < 0.1).float().mean()) - 0.1) < 0.02
    assert abs(float((logsnr < 0.1).float().mean()) - 0.363) < 0.02
