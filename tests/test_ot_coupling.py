"""The OT pairs computed ahead in a worker thread are the synchronous loop's pairs.

The reference is the loop without the pair stream (``Solver.minibatches``: the loss draws
the noise and calls ``ot_pairs`` inline), i.e. the code path before prefetching existed.
"""

from __future__ import annotations

import threading

import pytest
import torch

from genbench.core.solver import Solver
from solvers.cfm import CFM, ot_pairs
from solvers.ot_coupling import THREAD_PREFIX, OTPairStream, exact_match

TINY = {"hidden": 16, "depth": 2, "batch_size": 24, "steps": 12, "log_every": 4, "warmup": 2,
        "coupling": "ot"}


def _data() -> torch.Tensor:
    # Anisotropic, off-centre data, so a wrong pairing or a shifted draw shows.
    g = torch.Generator().manual_seed(3)
    return torch.randn(300, 2, generator=g) * torch.tensor([2.0, 0.3]) + torch.tensor([1.0, -4.0])


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def _train(monkeypatch: pytest.MonkeyPatch, mode: str, **extra: object):
    """Train a tiny OT-CFM; return (pairs seen by the loss, trained solver)."""
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
    with monkeypatch.context() as m:
        if mode == "inline":  # the pre-stream path: the loss pairs the batch itself
            m.setattr(CFM, "minibatches", Solver.minibatches)

            def recording_ot_pairs(x0, x1, n=None):
                out = ot_pairs(x0, x1, n)
                pairs.append((out[0].clone(), out[1].clone()))
                return out

            m.setattr("solvers.cfm.ot_pairs", recording_ot_pairs)
        else:
            original = OTPairStream.__next__

            def recording_next(self):
                rows = original(self)
                pairs.append((rows[:, :2].clone(), rows[:, 2:].clone()))
                return rows

            m.setattr(OTPairStream, "__next__", recording_next)
        torch.manual_seed(7)
        solver = CFM(2, {**TINY, "ot_prefetch": mode == "prefetch", **extra})
        solver.fit(_data())
    return pairs, solver


@pytest.mark.parametrize("mode", ["prefetch", "stream-inline"])
def test_stream_yields_the_synchronous_pairs_and_training(monkeypatch, mode):
    ref_pairs, ref = _train(monkeypatch, "inline")
    pairs, solver = _train(monkeypatch, mode)
    assert len(pairs) == len(ref_pairs) == TINY["steps"]
    for (a0, a1), (b0, b1) in zip(pairs, ref_pairs, strict=True):
        assert torch.equal(a0, b0) and torch.equal(a1, b1)
    # Same draws in the same order: the trained weights and the RNG state after fit agree.
    for p, q in zip(solver.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    assert not _workers()


def test_stream_with_sigma_keeps_the_draw_order(monkeypatch):
    # sigma > 0 adds a draw after the times: the next batch's draws must still come later.
    _, ref = _train(monkeypatch, "inline", sigma=0.1)
    after_ref = torch.rand(3)
    _, solver = _train(monkeypatch, "prefetch", sigma=0.1)
    after = torch.rand(3)
    assert torch.equal(after, after_ref)  # no extra draw beyond the last step either
    for p, q in zip(solver.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(p, q)


def test_exact_match_recovers_a_hidden_permutation():
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(64, 3, generator=g) * 5
    perm = torch.randperm(64, generator=g)
    x0 = x1[perm] + 1e-3 * torch.randn(64, 3, generator=g)
    assert torch.equal(exact_match(x0, x1), perm)


def test_worker_stops_when_a_training_step_raises(monkeypatch):
    class Boom(RuntimeError):
        pass

    calls = {"n": 0}
    original = CFM.loss

    def failing_loss(self, z):
        calls["n"] += 1
        if calls["n"] == 5:
            raise Boom("step 5")
        return original(self, z)

    monkeypatch.setattr(CFM, "loss", failing_loss)
    torch.manual_seed(0)
    solver = CFM(2, TINY)
    with pytest.raises(Boom):
        solver.fit(_data())
    assert not _workers(), "the plan worker outlived a failed training"
    assert solver._pairs is None


def test_closed_stream_stops_and_joins_its_worker():
    stream = OTPairStream(_data(), 16, 10, prefetch=True)
    next(stream)
    stream.kick()  # a plan in flight when closing
    assert _workers()
    stream.close()
    assert not _workers()
    with pytest.raises(StopIteration):
        next(stream)
    stream.close()  # idempotent


def test_stream_rejects_bad_sizes():
    with pytest.raises(ValueError, match="batch and steps must be positive"):
        OTPairStream(_data(), 0, 10)


def test_a_plan_the_worker_has_not_started_is_solved_inline_with_the_same_pairs():
    z = _data()
    torch.manual_seed(1)
    inline = OTPairStream(z, 16, 3, prefetch=False)
    expected = [next(inline) for _ in range(1)]
    torch.manual_seed(1)
    stream = OTPairStream(z, 16, 3, prefetch=True)
    # Occupy the only worker so the first plan waits in its queue, then take the plan back.
    gate = threading.Event()
    stream._pool.submit(gate.wait)
    rows = next(stream)
    gate.set()
    assert stream.solved_inline == 1
    assert torch.equal(rows, expected[0])
    stream.close()
    inline.close()
    assert not _workers()
