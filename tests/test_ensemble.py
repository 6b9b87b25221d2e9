"""Seeds trained together (genbench.core.ensemble) behave as their solo runs."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

from genbench.core.ensemble import batch_support, generator_state, train_together
from genbench.core.solver import get_solver_class
from genbench.run.pipeline import RESULTS_FILE, prepare_job
from genbench.run.seeds import run_seeds

TINY = {"hidden": 32, "depth": 2, "batch_size": 64, "steps": 60, "log_every": 10, "warmup": 5}
CASES = [("ddpm", {}), ("pfode", {}), ("lsb", {}), ("cfm", {"coupling": "ot"}),
         ("cfm", {"coupling": "independent", "sigma": 0.1}),
         ("ddpm", {"grad_clip": 0.05})]  # the clip active at every step: per seed or wrong
SEEDS = (0, 1, 2)


def _data() -> torch.Tensor:
    g = torch.Generator().manual_seed(11)  # off-centre, anisotropic
    return torch.randn(400, 2, generator=g) * torch.tensor([2.0, 0.5]) + torch.tensor([1.0, -2.0])


def _solo_and_batched(name: str, extra: dict, data: list[torch.Tensor], networks: str):
    cls = get_solver_class(name)
    cfg = {**TINY, **extra}
    solo, batched, states = [], [], []
    for seed, z in zip(SEEDS, data, strict=True):
        torch.manual_seed(seed)
        s = cls(2, cfg)
        solo.append((s, s.fit(z)))
        torch.manual_seed(seed)
        batched.append(cls(2, cfg))
        states.append(generator_state("cpu"))
    return solo, batched, train_together(batched, data, rng_states=states, networks=networks)


@pytest.mark.parametrize("networks", ["stacked", "vmap"])
@pytest.mark.parametrize(("name", "extra"), CASES)
def test_batched_seeds_follow_their_solo_runs(name, extra, networks):
    data = [_data(), _data() * 0.5, _data() + 1.0]  # each seed its own training set
    solo, batched, stats = _solo_and_batched(name, extra, data, networks)
    finals = [st["final_loss"] for _, st in solo]
    spread = statistics.stdev(finals)
    for (s, st), b, bt in zip(solo, batched, stats, strict=True):
        # Same draws, same init: the curves agree up to float rounding of the batched matmul.
        assert [c[0] for c in bt["loss_curve"]] == [c[0] for c in st["loss_curve"]]
        for (_, x), (_, y) in zip(bt["loss_curve"], st["loss_curve"], strict=True):
            assert x == pytest.approx(y, rel=1e-3)
        assert abs(bt["final_loss"] - st["final_loss"]) < 0.05 * spread
        for p, q in zip(b.ema.module.parameters(), s.ema.module.parameters(), strict=True):
            assert torch.allclose(p, q, atol=1e-4)
        for p, q in zip(b.net.parameters(), s.net.parameters(), strict=True):
            assert torch.allclose(p, q, atol=1e-4)
        assert b.fitted and b.ema._count == s.ema._count == TINY["steps"]
        assert torch.allclose(b.sample(50, generator=torch.Generator().manual_seed(0)),
                              s.sample(50, generator=torch.Generator().manual_seed(0)),
                              atol=1e-3)


@pytest.mark.parametrize("name", ["ddpm", "cfm"])
def test_batched_training_reads_back_only_every_log_every_steps(name):
    from pathlib import Path

    from genbench.core.host_reads import count_host_reads

    root = Path(__file__).resolve().parents[1]
    totals = []
    for steps in (20, 40):
        cls = get_solver_class(name)
        solvers = [cls(2, {**TINY, "steps": steps}) for _ in SEEDS]
        with count_host_reads() as reads:
            train_together(solvers, [_data()] * len(SEEDS))
        totals.append(reads.within(root).by_function())
    designed = {("solvers/ot_coupling.py", "exact_match")}  # the OT plan, solved on the host
    grown = {k: totals[1][k] - totals[0][k] for k in totals[1]
             if totals[1][k] > totals[0][k] and k not in designed}
    assert sum(grown.values()) <= 2, f"reads growing with the step count: {grown}"


def test_seed_k_starts_from_its_solo_initialisation(tmp_path):
    # lr = 1e-30 (lr must be positive): each update is far below a float32 ulp of the
    # weights, so training leaves them where they started; they must be seed k's solo init.
    from genbench.core.config import RunConfig

    rcs = [RunConfig(solver={"name": "pfode", **TINY, "lr": 1e-30, "steps": 3},
                     dataset={"name": "moons"}, autoencoder={"name": "identity"}, seed=s,
                     device="cpu", cache_dir=str(tmp_path)) for s in (4, 9)]
    jobs = [prepare_job(rc) for rc in rcs]
    states = []
    for rc in rcs:  # the solo construction, repeated: the state right after it
        prepare_job(rc)
        states.append(generator_state("cpu"))
    solvers = [j.solver for j in jobs]
    train_together(solvers, [j.z_train for j in jobs], rng_states=states)
    for rc, solver in zip(rcs, solvers, strict=True):
        solo = prepare_job(rc).solver
        for p, q in zip(solver.net.parameters(), solo.net.parameters(), strict=True):
            assert torch.equal(p, q)
        assert not torch.equal(next(solvers[0].net.parameters()),
                               next(solvers[1].net.parameters()))


def test_batch_support_names_what_cannot_batch():
    jko = get_solver_class("jko")(2, {"hidden": 8, "steps": 2})
    assert "cannot batch seeds" in batch_support([jko])
    cfm = get_solver_class("cfm")
    assert "cannot batch" in batch_support([cfm(2, {**TINY, "rectified": 1})])
    assert "one solver config" in batch_support([cfm(2, TINY), cfm(2, {**TINY, "lr": 1e-3})])
    assert batch_support([cfm(2, TINY), cfm(2, TINY)]) is None
    with pytest.raises(ValueError, match="cannot train these seeds together"):
        train_together([jko], [_data()])


def test_run_seeds_writes_one_result_per_seed_like_solo_runs(tmp_path):
    cfg = {"solver": {"name": "ddpm", **TINY, "sample_steps": 20}, "dataset": {"name": "moons"},
           "autoencoder": {"name": "identity"}, "device": "cpu", "progress": False,
           "cache_dir": str(tmp_path / "cache"), "eval": {"plot": False}}
    seeds = [0, 1]
    solo = run_seeds(cfg, seeds, [tmp_path / "solo" / f"s{s}" for s in seeds])
    together = run_seeds(cfg | {"batch_seeds": True}, seeds,
                         [tmp_path / "batch" / f"s{s}" for s in seeds])
    for a, b, seed in zip(solo, together, seeds, strict=True):
        assert a["status"] == b["status"] == "ok", b.get("traceback")
        assert b["seed"] == seed and b["train"]["batched_seeds"] == 2
        saved = json.loads((tmp_path / "batch" / f"s{seed}" / RESULTS_FILE).read_text())
        assert saved["metrics"]["data_w2"] == b["metrics"]["data_w2"]
        assert b["metrics"]["final_loss"] == pytest.approx(a["metrics"]["final_loss"], rel=1e-3)
        assert b["metrics"]["data_w2"] == pytest.approx(a["metrics"]["data_w2"], rel=0.02)
    # resume: a solo sweep over the batched folders finds the results (batch_seeds is neutral)
    again = run_seeds(cfg, seeds, [tmp_path / "batch" / f"s{s}" for s in seeds])
    assert all(r.get("skipped") for r in again)


def _reference_loss(name: str, solver, z: torch.Tensor) -> torch.Tensor:
    """Each solver's loss written out with its draws in the order of the solo loop before the
    regression form (the order a solo run's numbers depend on)."""
    net = solver.net
    if name == "ddpm":
        T = solver.config.timesteps
        t = torch.randint(1, T + 1, (z.shape[0],))
        abar = solver.alpha_bars[t - 1][:, None]
        eps = torch.randn_like(z)
        x_t = abar.sqrt() * z + (1 - abar).sqrt() * eps
        return (net(x_t, t.float() / T) - eps).pow(2).sum(dim=1).mean()
    if name == "pfode":  # uniform t, the law before time_sampling (same draws)
        lo, hi = solver.config.train_t_eps, solver.config.horizon
        t = lo + (hi - lo) * torch.rand(z.shape[0])
        alpha, sigma = solver.schedule.alpha_sigma(t[:, None])
        eps = torch.randn_like(z)
        return (net(alpha * z + sigma * eps, t) - eps).pow(2).sum(dim=1).mean()
    if name == "cfm":  # independent coupling, sigma > 0: noise, times, then path noise
        x0 = torch.randn_like(z)
        t = torch.rand(z.shape[0], 1)
        x_t = (1 - t) * x0 + t * z + solver.config.sigma * torch.randn_like(z)
        return (net(x_t, t.squeeze(1)) - (z - x0)).pow(2).sum(dim=1).mean()
    t = solver.time_of(torch.rand(z.shape[0], 1))  # lsb, x0 weighting
    a, s = solver._path(t)
    eps = torch.randn_like(z)
    out, offset, scale = solver._predict(net, a * z + s * eps, t)
    err = (out - (z - offset) / scale).pow(2).sum(dim=1, keepdim=True)
    return (err * scale**2 / solver.data_var).mean()


@pytest.mark.parametrize(("name", "extra"), [
    ("ddpm", {}), ("pfode", {"time_sampling": "uniform"}),
    ("cfm", {"coupling": "independent", "sigma": 0.1}),
    ("lsb", {"prediction": "x0", "weighting": "x0"})])
def test_solo_loss_keeps_its_draw_order_and_value_bit_for_bit(name, extra):
    z = _data()[:64]
    torch.manual_seed(0)
    solver = get_solver_class(name)(2, {**TINY, **extra})
    solver.prepare(z)
    values = []
    for fn in (solver.loss, lambda z: _reference_loss(name, solver, z),
               lambda z: solver.regression(z).loss_of(solver.net)):
        torch.manual_seed(5)
        values.append(fn(z))
        values.append(torch.rand(()))  # the stream after the loss: same number of draws
    assert all(torch.equal(v, w) for v, w in zip(values[:2], values[2:4], strict=True))
    assert all(torch.equal(v, w) for v, w in zip(values[:2], values[4:], strict=True))


@pytest.mark.parametrize(("name", "extra"), [("ddpm", {}),
                                             ("cfm", {"coupling": "ot", "ot_prefetch": True})])
def test_each_seed_draws_from_its_own_stream(name, extra):
    # Same init and same data for both seeds: only the random streams tell them apart, so
    # seed k must end where the solo run from stream k ends, and away from the other's.
    cls = get_solver_class(name)
    cfg = {**TINY, **extra, "steps": 30}
    z = _data()
    streams = []
    for s in (100, 200):
        torch.manual_seed(s)
        streams.append(generator_state("cpu"))
    solo = []
    for state in streams:
        torch.manual_seed(0)
        solver = cls(2, cfg)
        torch.set_rng_state(state)
        solver.fit(z)
        solo.append(torch.cat([p.detach().flatten() for p in solver.net.parameters()]))
    together = []
    for _ in streams:
        torch.manual_seed(0)
        together.append(cls(2, cfg))
    train_together(together, [z, z], rng_states=streams)
    for k, solver in enumerate(together):
        w = torch.cat([p.detach().flatten() for p in solver.net.parameters()])
        assert torch.allclose(w, solo[k], atol=1e-4)
        assert not torch.allclose(w, solo[1 - k], atol=1e-2)


def test_bad_networks_and_regression_stack_inputs_are_named():
    from genbench.core.regression import Regression

    solvers = [get_solver_class("ddpm")(2, TINY) for _ in range(2)]
    with pytest.raises(ValueError, match="networks must be one of"):
        train_together(solvers, [_data()] * 2, networks="loop")
    a = Regression(torch.zeros(4, 2), torch.zeros(4), torch.zeros(4, 2))
    b = Regression(torch.zeros(5, 2), torch.zeros(5), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="one shape"):
        Regression.stack([a, b])
    with pytest.raises(ValueError, match="some seeds only"):
        Regression.stack([a, Regression(a.x, a.t, a.target, weight=torch.ones(4))])
    # a stacked regression reduces each seed's rows apart: (K,) losses
    c = Regression(torch.zeros(4, 2), torch.zeros(4), torch.ones(4, 2),
                   weight=torch.full((4,), 2.0), divisor=torch.tensor(4.0))
    d = Regression(c.x, c.t, c.target, weight=torch.ones(4), divisor=torch.ones(4))
    stacked = Regression.stack([c, d])
    assert torch.equal(stacked.loss(torch.zeros(2, 4, 2)), torch.tensor([1.0, 2.0]))
    assert torch.equal(stacked.loss(torch.ones(2, 4, 2)), torch.zeros(2))
    assert torch.equal(c.loss(torch.zeros(4, 2)), torch.tensor(1.0))
