"""Throughput of every solver: training steps/s and samples/s against dimension and batch.

Each solver (default config, built with :func:`genbench.core.registry.create_solver`; ``cfm`` also
with ``coupling=independent`` to show what the exact OT plan costs) trains on ``N(0, I)``
latents in dimension 2, 8, 32 and 128 at batch 256 and 1024. The shared loop
(:func:`genbench.core.training.train`) is timed after a two-step warm-up fit, for as many steps as
fill about half a second of CPU; JKO trains one block (its steps are per block). Sampling
draws 10,000 points with a fixed 10-step sampler (Euler for the ODE solvers), best of two
draws, so the cost of one network evaluation at that size can be read off and scaled to any
NFE; NFE is the solver's own count.

References:
    Paszke et al., "PyTorch: An Imperative Style, High-Performance Deep Learning Library",
    NeurIPS 2019.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from perf_clock import Clock
from perf_peer import matched_sampler

__all__ = ["ThroughputBudget", "run_throughput", "variants"]


@dataclass
class ThroughputBudget:
    dims: tuple[int, ...] = (2, 8, 32, 128)
    batches: tuple[int, ...] = (256, 1024)
    n_train: int = 8192
    target_cpu_s: float = 0.5  # CPU seconds of timed training per configuration
    min_steps: int = 3
    max_steps: int = 100
    n_samples: int = 10_000
    sample_steps: int = 10
    sample_repeats: int = 2  # best of: sampling at n = 10,000 is sensitive to other load


def variants() -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, solver, extra config)`` for every registered solver, plus cfm independent."""
    from genbench.core.solver import list_solvers

    out = []
    for name in list_solvers():
        if name == "cfm":
            out += [("cfm (ot)", "cfm", {"coupling": "ot"}),
                    ("cfm (independent)", "cfm", {"coupling": "independent"})]
        elif name == "jko":
            out.append(("jko (1 block)", "jko", {"max_blocks": 1}))
        else:
            out.append((name, name, {}))
    return out


def _train_rate(solver: Any, z: torch.Tensor, budget: ThroughputBudget) -> dict[str, Any]:
    from genbench.core.training import train

    solver.fit(z, steps=2)  # warm-up; also sets what fit sets (moments, blocks)
    with Clock() as probe:
        train(solver, z, steps=2)
    estimate = max(probe.cpu / 2, 1e-4)
    steps = int(min(budget.max_steps, max(budget.min_steps,
                                          math.ceil(budget.target_cpu_s / estimate))))
    with Clock() as clock:
        train(solver, z, steps=steps)
    return {"timed_steps": steps, "steps_per_s_cpu": steps / clock.cpu,
            "steps_per_s_wall": steps / clock.wall, "ms_per_step_cpu": 1e3 * clock.cpu / steps}


def _sample_rate(name: str, solver: Any, budget: ThroughputBudget) -> dict[str, Any]:
    keys = matched_sampler(name, budget.sample_steps, solver) or {}
    for key, value in keys.items():
        setattr(solver.config, key, value)
    n = budget.n_samples
    clocks = []
    for _ in range(budget.sample_repeats):
        with Clock() as clock:
            solver.sample(n, generator=torch.Generator().manual_seed(0))
        clocks.append(clock)
    clock = min(clocks, key=lambda c: c.cpu)
    nfe = solver.nfe
    return {"sampler": keys or "default", "nfe": nfe, "n": n,
            "samples_per_s_cpu": n / clock.cpu, "samples_per_s_wall": n / clock.wall,
            "s_per_10k_cpu": 1e4 * clock.cpu / n, "s_per_10k_wall": 1e4 * clock.wall / n,
            "ms_per_nfe_per_10k_cpu": 1e3 * 1e4 * clock.cpu / n / max(nfe, 1)}


def run_throughput(budget: ThroughputBudget, log: Any = print) -> dict[str, Any]:
    from genbench.core.solver import create_solver

    rows = []
    for label, name, extra in variants():
        for dim in budget.dims:
            torch.manual_seed(0)
            z = torch.randn(budget.n_train, dim)
            for i, batch in enumerate(budget.batches):
                config = {"batch_size": batch, "log_every": 50, **extra}
                solver = create_solver(name, dim, config)
                row: dict[str, Any] = {"method": label, "dim": dim, "batch": batch,
                                       **_train_rate(solver, z, budget)}
                if i == 0:  # sampling does not depend on the training batch
                    row["sampling"] = _sample_rate(name, solver, budget)
                rows.append(row)
                sampled = row.get("sampling")
                log(f"[throughput] {label} d={dim} b={batch}: "
                    f"{row['steps_per_s_cpu']:.1f} steps/s cpu"
                    + (f", {sampled['samples_per_s_cpu']:.0f} samples/s cpu "
                       f"(NFE {sampled['nfe']})" if sampled else ""))
    return {"budget": asdict(budget), "rows": rows}
