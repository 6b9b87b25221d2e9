"""A solver written from scratch, only from the README's contract, runs end to end.

Not a subclass of a built-in: if the contract needs a member the README does not name, this
fails. The solver fits a Gaussian ``z = A eps + b`` by matching the first two moments, so the
test also checks what it learned against the target's mean and covariance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from genbench.pipeline import RESULTS_FILE, run
from genbench.registry import register_solver
from genbench.solver import SOLVERS, Solver, SolverConfig


@dataclass
class MomentConfig(SolverConfig):
    init_scale: float = 0.5


class MomentMatcher(Solver):
    """``z = A eps + b`` with ``A``, ``b`` trained to match the minibatch mean and covariance."""

    Config = MomentConfig

    def build(self) -> None:
        self.net = nn.Linear(self.dim, self.dim)
        with torch.no_grad():
            self.net.weight.mul_(self.config.init_scale)

    def loss(self, z: Tensor) -> Tensor:
        eps = torch.randn_like(z)
        x = self.net(eps)
        mean_gap = (x.mean(0) - z.mean(0)).pow(2).sum()
        cov_gap = (torch.cov(x.T) - torch.cov(z.T)).pow(2).sum()
        return mean_gap + cov_gap

    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        self.nfe = 1
        eps = torch.randn(n, self.dim, generator=generator, device=self.device)
        return self.ema.module(eps)


@pytest.fixture
def registered():
    saved = SOLVERS.snapshot()
    register_solver("moment_matcher")(MomentMatcher)
    yield MomentMatcher
    SOLVERS.restore(saved)


def test_from_scratch_solver_learns_the_target_moments(registered):
    torch.manual_seed(0)
    mean = torch.tensor([2.0, -1.0, 0.5])
    mix = torch.tensor([[1.5, 0.0, 0.0], [0.8, 0.5, 0.0], [-0.3, 0.2, 0.9]])  # det 0.675
    z = torch.randn(4000, 3) @ mix.T + mean
    solver = registered(3, {"steps": 600, "batch_size": 512, "lr": 0.02, "ema_decay": 0.9})
    stats = solver.fit(z)
    assert stats["final_loss"] < 0.5  # minibatch moments are noisy: no exact zero
    x = solver.sample(20000, generator=torch.Generator().manual_seed(1))
    assert x.shape == (20000, 3) and solver.nfe == 1
    assert torch.allclose(x.mean(0), mean, atol=0.1)
    assert torch.allclose(torch.cov(x.T), mix @ mix.T, atol=0.15)


def test_from_scratch_solver_is_scored_through_the_pipeline(registered, tmp_path):
    cfg = {"seed": 0, "device": "cpu", "progress": False, "cache_dir": str(tmp_path / "cache"),
           "dataset": {"name": "gmm", "dim": 3, "n_train": 1000, "n_test": 300},
           "autoencoder": {"name": "identity"},
           "solver": {"name": "moment_matcher", "steps": 300, "lr": 0.02},
           "eval": {"plot": False}}
    result = run(cfg, tmp_path / "job")
    assert result["status"] == "ok", result.get("traceback")
    saved = json.loads((tmp_path / "job" / RESULTS_FILE).read_text())
    metrics = saved["metrics"]
    assert saved["solver"] == "moment_matcher" and metrics["nfe"] == 1
    assert metrics["data_w2"] > 0 and metrics["data_w2_ratio"] == pytest.approx(
        metrics["data_w2"] / metrics["data_w2_floor"])
