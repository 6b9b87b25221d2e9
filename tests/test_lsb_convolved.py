"""lsb as Jiao, Kang, Lin, Liu, Zuo (arXiv 2404.13309) build it: from p_z * N(0, sigma^2 I) to p_z.

The start is the empirical convolved law of the training latents, z_i + sigma eps; the
drift is sigma^2 grad log(p_z * N(0, sigma^2 (1 - t) I)) = (E[y | Z_t] - Z_t) / (1 - t) on
Z_t = y + sigma sqrt(1 - t) eps. For the empirical p_z the posterior mean is a softmax
average of the training latents, so the oracle below is exact for the law the solver
actually starts from, and the bridge must return the training set's mixture weights.
"""

from __future__ import annotations

import pytest
import torch

from genbench.core.config import ConfigError
from genbench.core.solver import create_solver
from solvers.lsb import LSB
from tests.oracle_targets import MIXTURE_1D

SIGMA = 1.0


def latents(n: int = 2000) -> torch.Tensor:
    return MIXTURE_1D.sample(n, torch.Generator().manual_seed(11)).float()


def convolved_moments(z: torch.Tensor, sigma: float) -> list[float]:
    """E[(z + sigma e)^k], k = 1..4, z uniform over the rows, e ~ N(0, 1) (Gaussian moments
    0, 1, 0, 3 expanded binomially)."""
    z = z.double()[:, 0]
    m = [float(z.pow(k).mean()) for k in range(5)]
    s2 = sigma**2
    return [m[1], m[2] + s2, m[3] + 3 * s2 * m[1], m[4] + 6 * s2 * m[2] + 3 * s2**2]


def test_default_start_is_the_convolved_training_law() -> None:
    assert LSB.Config().start == "convolved"
    z = latents()
    solver = create_solver("lsb", 1, {"hidden": 8, "depth": 1, "sigma": SIGMA})
    solver.prepare(z)
    x = solver.start_sample(400_000, torch.Generator().manual_seed(0)).double()[:, 0]
    for k, want in enumerate(convolved_moments(z, SIGMA), start=1):
        power = x.pow(k)
        se = float(power.std()) / len(x) ** 0.5
        assert abs(float(power.mean()) - want) < 5 * se, (k, float(power.mean()), want, se)
    # A Gaussian with the same two moments (the old `smoothed` start) has another 3rd/4th
    # moment: the bimodal latents are skewed and light-tailed.
    gauss = z.double().mean() + (z.double().var() + SIGMA**2).sqrt() * torch.randn(
        400_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert abs(float(gauss.pow(4).mean()) - convolved_moments(z, SIGMA)[3]) > 1.0


def empirical_denoiser(z: torch.Tensor, sigma: float):
    """E[y | y + sigma sqrt(1 - t) eps = x] for y uniform over the rows of z (exact)."""
    def denoise(x: torch.Tensor, t, *, net=None) -> torch.Tensor:
        t = float(torch.as_tensor(t).reshape(-1)[0])
        var = sigma**2 * (1 - t)
        logits = -(x - z[:, 0]).pow(2) / (2 * var)  # 1-D: (n, 1) - (m,) -> (n, m)
        return torch.softmax(logits, dim=1) @ z

    return denoise


def test_exact_bridge_keeps_the_training_mixture_weights() -> None:
    z = latents(500)
    solver = create_solver("lsb", 1, {"hidden": 8, "depth": 1, "sigma": SIGMA})
    solver.prepare(z)
    solver.denoise = empirical_denoiser(z, SIGMA)
    x = solver.sample(5000, generator=torch.Generator().manual_seed(2))
    want = float((z[:, 0] > -0.25).float().mean())
    got = float((x[:, 0] > -0.25).float().mean())
    assert abs(got - want) < 0.035, (got, want)  # se 0.0065
    assert abs(float(x.mean()) - float(z.mean())) < 0.05
    assert abs(float(x.var()) - float(z.var())) < 0.1


def test_short_training_keeps_the_mixture_weights() -> None:
    torch.manual_seed(0)
    z = latents(4000)
    solver = create_solver("lsb", 1, {"hidden": 64, "depth": 2, "steps": 800, "lr": 3e-3,
                                      "ema_decay": 0.99, "warmup": 50, "batch_size": 256})
    solver.fit(z)
    x = solver.sample(4000, generator=torch.Generator().manual_seed(3))
    want = float((z[:, 0] > -0.25).float().mean())
    got = float((x[:, 0] > -0.25).float().mean())
    assert abs(got - want) < 0.05, (got, want)


def test_start_latents_survive_save_and_load(tmp_path) -> None:
    z = latents(300)
    solver = create_solver("lsb", 1, {"hidden": 8, "depth": 1})
    solver.fit(z, steps=2)
    solver.save(tmp_path / "lsb.pt")
    loaded = LSB.load(tmp_path / "lsb.pt")
    assert torch.equal(loaded.start_latents, solver.start_latents)
    gen = torch.Generator().manual_seed(4)
    first = solver.sample(50, generator=gen)
    again = loaded.sample(50, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(first, again)


@pytest.mark.parametrize("old, new", [("delta", "schrodinger_follmer"), ("smoothed", "convolved")])
def test_former_start_names_point_to_the_new_ones(old: str, new: str) -> None:
    with pytest.raises(ConfigError, match=new):
        create_solver("lsb", 1, {"start": old})
