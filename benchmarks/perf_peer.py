"""Side by side with torchcfm: time per training step, sampling time and W2 at one budget.

The peer is torchcfm's OT-CFM as its tutorials use it: ``ExactOptimalTransportConditionalFlow
Matcher`` (POT's exact minibatch plan), its ``models.MLP`` (three hidden layers, time
concatenated as one input feature), plain Adam, and an explicit Euler solve with torchdiffeq.
It and every genbench solver (``cfm`` with ``coupling=ot`` first) learn the same standardised
latents (genbench's identity encoder fitted on one training split) with the same width, batch,
learning rate and number of steps, then draw 1,000 points each, scored by exact W2 against the
same 1,000 held-out points. Sampling is matched (Euler with the same number of steps, or each
genbench solver's own sampler at the same step count) and repeated with each method's default
adaptive sampler (dopri5, rtol = atol = 1e-5, for torchcfm and the flow solvers).

JKO trains a stack of blocks through an ODE solver, about forty times the work of a
regression step at the same width; it runs at its own default width (64) with the step budget
split over its blocks, and says so in its row.

References:
    Tong, Fatras, Malkin, Huguet, Zhang, Rector-Brooks, Wolf, Bengio, "Improving and
    Generalizing Flow-Based Generative Models with Minibatch Optimal Transport", TMLR 2024
    (OT-CFM; the torchcfm package).
    Lipman, Chen, Ben-Hamu, Nickel, Le, "Flow Matching for Generative Modeling", ICLR 2023.
    Chen, Rubanova, Bettencourt, Duvenaud, "Neural Ordinary Differential Equations",
    NeurIPS 2018 (torchdiffeq).
    Flamary et al., "POT: Python Optimal Transport", JMLR 2021.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from perf_clock import Clock, ratio
from torch import Tensor, nn

__all__ = [
    "PEER", "PeerBudget", "coupling_cost", "prepare", "run_peer", "summarise_peer",
    "torchcfm_available", "w2_exact",
]

PEER = "torchcfm OT-CFM"
ADAPTIVE = {"method": "dopri5", "rtol": 1e-5, "atol": 1e-5}


@dataclass
class PeerBudget:
    """What both sides share: data, network size, optimiser budget and sampler steps."""

    datasets: tuple[str, ...] = ("moons", "8gaussians")
    steps: int = 1000
    batch_size: int = 256
    hidden: int = 256
    depth: int = 3
    lr: float = 2e-3
    sample_steps: int = 100
    n_eval: int = 1000
    seeds: tuple[int, ...] = (0, 1)  # torchcfm and cfm; the other solvers run the first seed


def torchcfm_available() -> str | None:
    """None when torchcfm imports, else why not (the benchmark then skips the peer)."""
    try:
        from torchcfm.conditional_flow_matching import (  # noqa: F401
            ExactOptimalTransportConditionalFlowMatcher,
        )
        from torchcfm.models.models import MLP  # noqa: F401
    except ImportError as err:
        return (f"torchcfm is not installed ({err}); install the extra with "
                "`pip install 'genbench[bench]'` (or `pip install --no-deps torchcfm` to keep "
                "the installed torch) to run the side-by-side comparison")
    return None


# -- the shared data ---------------------------------------------------------------------
def prepare(dataset: str, n_eval: int) -> tuple[Any, Tensor, Tensor, Tensor]:
    """``(encoder, z_train, x_test, x_reference)``: genbench's identity encoder, standardised."""
    from genbench.codecs import AutoencoderConfig, build_codec
    from genbench.data import build_dataset

    splits = build_dataset({"name": dataset}, seed=0)
    ae = build_codec(AutoencoderConfig(), splits.dim)
    ae.fit(splits.train)
    return ae, ae.encode(splits.train), splits.test[:n_eval], splits.reference[:n_eval]


def w2_exact(x: Tensor, y: Tensor) -> float:
    from genbench.eval.metrics.w2 import w2

    return w2(x, y, method="exact")[0]


# -- the peer: torchcfm's API, used the way its tutorials use it -------------------------
def train_torchcfm(z: Tensor, budget: PeerBudget, seed: int) -> tuple[nn.Module, Clock]:
    from torchcfm.conditional_flow_matching import ExactOptimalTransportConditionalFlowMatcher
    from torchcfm.models.models import MLP

    if budget.depth != 3:
        raise ValueError(f"torchcfm's MLP has 3 hidden layers; run with depth 3, not "
                         f"{budget.depth}")
    torch.manual_seed(seed)
    np.random.seed(seed)  # torchcfm draws the pairs from the plan with numpy's global RNG
    model = MLP(z.shape[1], w=budget.hidden, time_varying=True)
    matcher = ExactOptimalTransportConditionalFlowMatcher(sigma=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=budget.lr)
    batch = min(budget.batch_size, len(z))
    with Clock() as clock:
        for _ in range(budget.steps):
            x1 = z[torch.randint(len(z), (batch,))]
            x0 = torch.randn_like(x1)
            t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
            vt = model(torch.cat([xt, t[:, None]], dim=-1))
            loss = torch.mean((vt - ut) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model, clock


def sample_torchcfm(model: nn.Module, n: int, dim: int, seed: int,
                    steps: int | None) -> tuple[Tensor, int, Clock]:
    """Euler with ``steps`` steps on a uniform grid, or dopri5 when ``steps`` is None."""
    from torchdiffeq import odeint

    calls = 0

    def field(t: Tensor, x: Tensor) -> Tensor:
        nonlocal calls
        calls += 1
        return model(torch.cat([x, t.expand(x.shape[0], 1)], dim=-1))

    x0 = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad(), Clock() as clock:
        if steps is None:
            x1 = odeint(field, x0, torch.tensor([0.0, 1.0]), **ADAPTIVE)[-1]
        else:
            x1 = odeint(field, x0, torch.linspace(0, 1, steps + 1), method="euler")[-1]
    return x1, calls, clock


# -- genbench ----------------------------------------------------------------------------
def genbench_methods() -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, solver, extra config)``: cfm with the OT coupling first, then the others."""
    from genbench.core.solver import list_solvers

    methods = [("cfm (ot)", "cfm", {"coupling": "ot"}),
               ("cfm (independent)", "cfm", {"coupling": "independent"})]
    return methods + [(name, name, {}) for name in list_solvers() if name != "cfm"]


def matched_sampler(name: str, steps: int, solver: Any) -> dict[str, Any] | None:
    """Config keys giving solver ``name`` a ``steps``-step fixed sampler (None: unknown)."""
    if name in ("cfm", "pfode"):
        return {"method": "euler", "sample_steps": steps}
    if name == "ddpm":
        return {"sample_steps": steps}
    if name == "lsb":
        return {"sde_steps": steps}
    if name == "jko":
        blocks = max(1, int(solver.n_blocks))
        return {"sample_method": "euler", "sample_steps": max(1, steps // blocks)}
    return None


def genbench_config(name: str, extra: dict[str, Any], budget: PeerBudget) -> dict[str, Any]:
    from genbench.core.solver import get_solver_class

    config = {"steps": budget.steps, "batch_size": budget.batch_size, "hidden": budget.hidden,
              "depth": budget.depth, "lr": budget.lr, **extra}
    if name == "jko":  # its own width; the step budget is split over its blocks
        defaults = get_solver_class("jko").Config()
        config["hidden"] = defaults.hidden
        config["steps"] = max(1, budget.steps // defaults.max_blocks)
    return config


def run_genbench(name: str, config: dict[str, Any], z: Tensor, seed: int, n: int,
                 sample_steps: int, ae: Any, x_test: Tensor) -> dict[str, Any]:
    from genbench.core.solver import create_solver

    torch.manual_seed(seed)
    solver = create_solver(name, z.shape[1], config)
    with Clock() as train_clock:
        stats = solver.fit(z)
    row: dict[str, Any] = {"steps": stats["steps"], **_train_figures(train_clock, stats["steps"])}
    if "n_blocks" in stats:
        row["n_blocks"] = stats["n_blocks"]
    samplers = {}
    for label, keys in (("default", {}),
                        (f"matched-{sample_steps}", matched_sampler(name, sample_steps, solver))):
        if keys is None:
            continue
        for key, value in keys.items():
            setattr(solver.config, key, value)
        with Clock() as clock:
            z_gen = solver.sample(n, generator=torch.Generator().manual_seed(seed))
        samplers[label] = {"nfe": solver.nfe, "wall_s": clock.wall, "cpu_s": clock.cpu,
                           "w2": w2_exact(ae.decode(z_gen), x_test)}
    return row | {"samplers": samplers}


def _train_figures(clock: Clock, steps: int) -> dict[str, float]:
    return {"train_wall_s": clock.wall, "train_cpu_s": clock.cpu,
            "ms_per_step_wall": 1e3 * clock.wall / steps,
            "ms_per_step_cpu": 1e3 * clock.cpu / steps}


def run_peer(budget: PeerBudget, log: Any = print) -> dict[str, Any]:
    """Every method on every data set; the peer is skipped (with the reason) if missing."""
    missing = torchcfm_available()
    if missing:
        log(f"[peer] skipping torchcfm: {missing}")
    rows: list[dict[str, Any]] = []
    floors: dict[str, float] = {}
    for dataset in budget.datasets:
        ae, z, x_test, x_ref = prepare(dataset, budget.n_eval)
        floors[dataset] = w2_exact(x_test, x_ref)
        for i, seed in enumerate(budget.seeds):
            base = {"dataset": dataset, "seed": seed}
            if not missing:
                model, clock = train_torchcfm(z, budget, seed)
                samplers = {}
                for label, steps in (("default", None),
                                     (f"matched-{budget.sample_steps}", budget.sample_steps)):
                    z_gen, nfe, sclock = sample_torchcfm(model, budget.n_eval, z.shape[1],
                                                         seed, steps)
                    samplers[label] = {"nfe": nfe, "wall_s": sclock.wall, "cpu_s": sclock.cpu,
                                       "w2": w2_exact(ae.decode(z_gen), x_test)}
                rows.append(base | {"method": PEER, "steps": budget.steps,
                                    **_train_figures(clock, budget.steps), "samplers": samplers})
                log(f"[peer] {dataset} s{seed} {PEER}: {rows[-1]['ms_per_step_cpu']:.2f} ms/step "
                    f"cpu, W2 {samplers[f'matched-{budget.sample_steps}']['w2']:.4f}")
            for label, name, extra in genbench_methods():
                if i > 0 and label != "cfm (ot)":
                    continue
                config = genbench_config(name, extra, budget)
                out = run_genbench(name, config, z, seed, budget.n_eval, budget.sample_steps,
                                   ae, x_test)
                rows.append(base | {"method": label, "config": config, **out})
                matched = out["samplers"].get(f"matched-{budget.sample_steps}", {})
                log(f"[peer] {dataset} s{seed} {label}: {out['ms_per_step_cpu']:.2f} ms/step "
                    f"cpu, W2 {matched.get('w2', float('nan')):.4f}")
    coupling = coupling_cost(dim=2)
    log("[peer] OT coupling ms/call cpu: " + ", ".join(
        f"{r['method']} b={r['batch']}: {r['ms_per_call_cpu']:.2f}" for r in coupling))
    return {"budget": asdict(budget), "skipped": missing, "floors": floors, "rows": rows,
            "summary": summarise_peer(rows, budget), "coupling": coupling}


def coupling_cost(batches: tuple[int, ...] = (256, 1024), dim: int = 2,
                  calls: int = 20) -> list[dict[str, Any]]:
    """CPU ms per minibatch OT coupling: genbench ``ot_pairs`` against torchcfm's sampler."""
    from solvers.cfm import ot_pairs

    methods: dict[str, Any] = {"genbench ot_pairs": ot_pairs}
    if torchcfm_available() is None:
        from torchcfm.optimal_transport import OTPlanSampler

        methods[PEER + " sample_plan"] = OTPlanSampler(method="exact").sample_plan
    rows = []
    for batch in batches:
        gen = torch.Generator().manual_seed(0)
        x0, x1 = torch.randn(2, batch, dim, generator=gen)
        for label, pair in methods.items():
            pair(x0, x1)  # warm-up
            with Clock() as clock:
                for _ in range(calls):
                    pair(x0, x1)
            rows.append({"method": label, "batch": batch, "ms_per_call_cpu":
                         1e3 * clock.cpu / calls, "ms_per_call_wall": 1e3 * clock.wall / calls})
    return rows


def summarise_peer(rows: list[dict[str, Any]], budget: PeerBudget) -> list[dict[str, Any]]:
    """Means over seeds per data set and method, with ratios to the peer."""
    matched = f"matched-{budget.sample_steps}"
    out = []
    for dataset in budget.datasets:
        by_method: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            if r["dataset"] == dataset:
                by_method.setdefault(r["method"], []).append(r)
        table = {}
        for method, rs in by_method.items():
            def mean(get: Any, rs: list[dict[str, Any]] = rs) -> float | None:
                values = [v for v in (get(r) for r in rs) if v is not None]
                return statistics.mean(values) if values else None

            def sampler(label: str, key: str) -> Any:
                return lambda row: row["samplers"].get(label, {}).get(key)

            table[method] = {
                "dataset": dataset, "method": method, "seeds": len(rs),
                "ms_per_step_cpu": mean(lambda r: r["ms_per_step_cpu"]),
                "ms_per_step_wall": mean(lambda r: r["ms_per_step_wall"]),
                "matched_nfe": mean(sampler(matched, "nfe")),
                "matched_sample_cpu_s": mean(sampler(matched, "cpu_s")),
                "matched_w2": mean(sampler(matched, "w2")),
                "matched_w2_by_seed": [sampler(matched, "w2")(r) for r in rs],
                "default_nfe": mean(sampler("default", "nfe")),
                "default_sample_cpu_s": mean(sampler("default", "cpu_s")),
                "default_w2": mean(sampler("default", "w2")),
            }
        peer = table.get(PEER, {})
        for entry in table.values():
            for key in ("ms_per_step_cpu", "ms_per_step_wall", "matched_sample_cpu_s",
                        "matched_w2", "default_sample_cpu_s", "default_w2"):
                entry[f"{key}_vs_peer"] = ratio(entry[key], peer.get(key))
            out.append(entry)
    return out
