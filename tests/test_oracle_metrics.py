"""The judge's estimators against what they must be: Sinkhorn debiasing and the W2 floor.

- Debiased Sinkhorn divergence (Genevay, Peyré, Cuturi, AISTATS 2018, eq. 4; Feydy et al.,
  AISTATS 2019, Thm. 1): S(a, b) = OT_eps(a, b) - (OT_eps(a, a) + OT_eps(b, b)) / 2 is 0 for
  a = b, while the raw entropic cost OT_eps(a, a) is not; for two draws of one law it sits
  far below the raw cost.
- The floor (genbench.eval.floors.floor_w2): the exact W2 between the test split and an
  independent reference split *of the same size* (plug-in W2 is biased by n^(-1/max(d, 4)),
  Fournier & Guillin 2015, so a floor on fewer points would be too large and flatter every
  ratio).
"""

from __future__ import annotations

import math

import ot
import torch

from genbench.core.config import EvalConfig
from genbench.eval.floors import floor_w2
from genbench.eval.metrics.w2 import w2
from tests.oracle_targets import GAUSSIAN


def draws(n: int, seed: int) -> torch.Tensor:
    return GAUSSIAN.sample(n, torch.Generator().manual_seed(seed))


def raw_entropic_w2(x: torch.Tensor, y: torch.Tensor, reg: float = 0.01) -> float:
    """sqrt of OT_eps(x, y) with eps = reg * mean squared cost, as w2(method="sinkhorn")."""
    eps = reg * float(ot.dist(x, y).mean())
    value = ot.sinkhorn2(ot.unif(len(x), type_as=x), ot.unif(len(y), type_as=y), ot.dist(x, y),
                         eps, method="sinkhorn_log", numItermax=20_000,
                         stopThr=1e-3 / math.sqrt(len(x)))
    return math.sqrt(float(value))


def test_debiased_sinkhorn_is_zero_for_a_sample_against_itself() -> None:
    x = draws(300, 0)
    value, method = w2(x, x.clone(), method="sinkhorn")
    assert method == "sinkhorn"
    assert value < 1e-3 * raw_entropic_w2(x, x), value


def test_debiased_sinkhorn_sits_far_below_the_raw_cost_for_one_law() -> None:
    x, y = draws(400, 1), draws(400, 2)
    debiased, _ = w2(x, y, method="sinkhorn")
    raw = raw_entropic_w2(x, y)
    exact, _ = w2(x, y, method="exact")
    # The debiasing removes the entropic self-costs (OT_eps(x, x) + OT_eps(y, y)) / 2, which
    # are as large as the cost between the draws themselves here.
    self_cost = 0.5 * (raw_entropic_w2(x, x) ** 2 + raw_entropic_w2(y, y) ** 2)
    assert raw**2 - debiased**2 > 0.8 * self_cost, (debiased, raw, self_cost)
    # ... and tracks the exact plug-in W2 between the two draws (same order, not above it).
    assert debiased < exact < raw, (debiased, exact, raw)


def test_floor_is_the_exact_w2_between_equal_sized_splits(tmp_path) -> None:
    test, reference = draws(1000, 3).float(), draws(1000, 4).float()
    floor = floor_w2(test, reference, EvalConfig(), tmp_path)
    exact, _ = w2(test, reference, method="exact")
    assert abs(floor - exact) < 1e-9, (floor, exact)
    # On half the reference the plug-in W2 is visibly larger: the equal size matters.
    half, _ = w2(test, reference[:500], method="exact")
    assert half > floor * 1.02, (half, floor)
