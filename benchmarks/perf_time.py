"""Time to a verdict: the OT plan off the critical path, and seeds trained together.

Each measurement runs beside the previous way in interleaved rounds (A, B, C, A, B, C, ...)
so that load from other processes falls on both alike; ratios are medians of per-round
ratios of **wall** times (a worker thread's time counts in CPU time but not on the critical
path, so CPU time cannot show the prefetch's gain).

- ``ot``: genbench ``cfm`` (coupling ``ot``) with the plan solved inline (``ot_prefetch:
  false``, the previous way) and in the worker thread (``ot_prefetch: true``), against
  torchcfm's ``ExactOptimalTransportConditionalFlowMatcher`` + ``MLP`` + Adam, at batch 256,
  width 256, depth 3 on moons; plus the two parts alone (one exact plan; one step of the
  network with the independent coupling), whose max the prefetching step should approach.
  W2 (Euler, 100 steps, 1,000 points) of the last round's models checks "equal or better".
- ``seeds``: ``K`` seeds of one solver at its default sizes trained together
  (:func:`genbench.core.ensemble.train_together`: each seed's regression drawn from its own
  stream, one batched forward/backward of the ``K`` networks, one optimiser step) against one
  seed alone, at 1 and 2 threads; ``networks`` is how the ``K`` networks run (``stacked``:
  ``TimeMLP.forward_stacked``, one ``baddbmm`` per layer; ``vmap``: ``torch.vmap`` over
  ``functional_call``, the fallback for networks without ``forward_stacked``).

On a GPU (``--device cuda``) the same code runs with the tensors on the device and a
synchronisation before each clock stops; see ``benchmarks/perf_cuda.sh``.

References:
    Tong et al., "Improving and Generalizing Flow-Based Generative Models with Minibatch
    Optimal Transport", TMLR 2024 (OT-CFM; torchcfm).
    PyTorch tutorial "Model ensembling" (torch.func.stack_module_state, vmap).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["TimeBudget", "markdown_time", "run_time"]


@dataclass
class TimeBudget:
    dataset: str = "moons"
    ot_steps: int = 300
    ot_batch: int = 256
    hidden: int = 256
    depth: int = 3
    lr: float = 2e-3
    rounds: int = 3
    seed_steps: int = 150
    seed_solvers: tuple[str, ...] = ("ddpm", "pfode", "lsb", "cfm")
    seed_networks: tuple[str, ...] = ("stacked",)
    seed_counts: tuple[int, ...] = (3, 5)
    threads: tuple[int, ...] = (1, 2)
    device: str = "cpu"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


_MAIN_CPU: list[float] = []  # the calling thread's CPU seconds of the last _timed call


def _timed(fn: Any, device: torch.device) -> float:
    """Wall seconds of ``fn()``; the calling thread's CPU seconds go to ``_MAIN_CPU``."""
    _sync(device)
    start, cpu = time.perf_counter(), time.thread_time()
    fn()
    _sync(device)
    _MAIN_CPU[:] = [time.thread_time() - cpu]
    return time.perf_counter() - start


def _median_ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


# -- the OT plan off the critical path ---------------------------------------------------
def _torchcfm(z: torch.Tensor, b: TimeBudget, device: torch.device) -> tuple[Any, float]:
    from torchcfm.conditional_flow_matching import ExactOptimalTransportConditionalFlowMatcher
    from torchcfm.models.models import MLP

    torch.manual_seed(0)
    np.random.seed(0)
    model = MLP(z.shape[1], w=b.hidden, time_varying=True).to(device)
    matcher = ExactOptimalTransportConditionalFlowMatcher(sigma=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=b.lr)

    def loop() -> None:
        for _ in range(b.ot_steps):
            x1 = z[torch.randint(len(z), (b.ot_batch,), device=device)]
            x0 = torch.randn_like(x1)
            t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
            loss = torch.mean((model(torch.cat([xt, t[:, None]], dim=-1)) - ut) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()

    return model, _timed(loop, device)


def _cfm(z: torch.Tensor, b: TimeBudget, device: torch.device, **extra: Any) -> tuple[Any, float]:
    from solvers.cfm import CFM

    torch.manual_seed(0)
    solver = CFM(z.shape[1], {"steps": b.ot_steps, "batch_size": b.ot_batch, "hidden": b.hidden,
                              "depth": b.depth, "lr": b.lr, "log_every": b.ot_steps,
                              **extra}).to(device)
    return solver, _timed(lambda: solver.fit(z), device)


def _plan_only(z: torch.Tensor, b: TimeBudget, device: torch.device) -> tuple[None, float]:
    from solvers.ot_coupling import exact_match

    g = torch.Generator(device=device).manual_seed(0)
    x0 = torch.randn(b.ot_batch, z.shape[1], generator=g, device=device)
    x1 = z[:b.ot_batch]
    return None, _timed(lambda: [exact_match(x0, x1) for _ in range(b.ot_steps)], device)


def run_ot(b: TimeBudget, log: Any = print) -> dict[str, Any]:
    from perf_peer import prepare, torchcfm_available, w2_exact

    device = torch.device(b.device)
    ae, z, x_test, _ = prepare(b.dataset, 1000)
    z = z.to(device)
    missing = torchcfm_available()
    ms: dict[str, list[float]] = {}
    main_cpu: dict[str, list[float]] = {}  # the main thread's CPU: the critical path's work
    models: dict[str, Any] = {}
    warm = dataclasses.replace(b, ot_steps=20)
    for r in range(-1, b.rounds):  # round -1: warm-up (allocator, kernels, threads), not kept
        bb = warm if r < 0 else b
        runs: list[tuple[str, Any, dict[str, Any]]] = [
            ("cfm ot, plan inline (before)", _cfm, {"ot_prefetch": False}),
            ("cfm ot, plan prefetched (now)", _cfm, {"ot_prefetch": True}),
            ("network step alone (independent)", _cfm, {"coupling": "independent"}),
            ("OT plan alone", _plan_only, {})]
        if missing is None:
            runs.append(("torchcfm OT-CFM", _torchcfm, {}))
        for label, fn, extra in runs:
            models[label], seconds = fn(z, bb, device, **extra)
            if r >= 0:
                ms.setdefault(label, []).append(1e3 * seconds / b.ot_steps)
                main_cpu.setdefault(label, []).append(1e3 * _MAIN_CPU[0] / b.ot_steps)
        if r < 0:
            continue
        log(f"[time/ot] round {r}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in ms.items())
            + " ms/step")
    before, now = ms["cfm ot, plan inline (before)"], ms["cfm ot, plan prefetched (now)"]
    out: dict[str, Any] = {
        "budget": asdict(b), "torchcfm_skipped": missing, "ms_per_step": ms,
        "median_ms_per_step": {k: statistics.median(v) for k, v in ms.items()},
        "main_thread_cpu_ms_per_step": main_cpu,
        "prefetch_vs_inline_main_cpu": _median_ratio(main_cpu["cfm ot, plan prefetched (now)"],
                                                     main_cpu["cfm ot, plan inline (before)"]),
        "prefetch_vs_inline": _median_ratio(now, before),
        "expected_ms_max": statistics.median(
            max(a, p) for a, p in zip(ms["network step alone (independent)"],
                                      ms["OT plan alone"], strict=True)),
    }
    w2 = {}
    with torch.no_grad():
        for label in ("cfm ot, plan prefetched (now)", "torchcfm OT-CFM"):
            model = models.get(label)
            if model is None:
                continue
            x0 = torch.randn(1000, z.shape[1], generator=torch.Generator().manual_seed(0))
            x = x0.to(device)
            for i in range(100):  # Euler, 100 steps, for both
                t = torch.full((1000,), i / 100, device=device)
                v = (model.ema.module(x, t) if label.startswith("cfm")
                     else model(torch.cat([x, t[:, None]], dim=-1)))
                x = x + v / 100
            w2[label] = w2_exact(ae.decode(x.cpu()), x_test)
    out["w2_euler100"] = w2
    if missing is None:
        peer = ms["torchcfm OT-CFM"]
        out["prefetch_vs_torchcfm"] = _median_ratio(now, peer)
        out["inline_vs_torchcfm"] = _median_ratio(before, peer)
        out["prefetch_vs_torchcfm_main_cpu"] = _median_ratio(
            main_cpu["cfm ot, plan prefetched (now)"], main_cpu["torchcfm OT-CFM"])
    log(f"[time/ot] prefetched/inline {out['prefetch_vs_inline']:.2f}x, "
        f"prefetched/torchcfm {out.get('prefetch_vs_torchcfm', float('nan')):.2f}x, W2 {w2}")
    return out


# -- seeds trained together --------------------------------------------------------------
def _seed_data(device: torch.device) -> torch.Tensor:
    from perf_peer import prepare

    return prepare("moons", 1000)[1].to(device)


def _solo(name: str, z: torch.Tensor, steps: int, device: torch.device) -> float:
    from genbench.core.solver import get_solver_class

    torch.manual_seed(0)
    solver = get_solver_class(name)(z.shape[1], {"steps": steps}).to(device)
    return _timed(lambda: solver.fit(z), device)


def _together(name: str, z: torch.Tensor, steps: int, k: int, device: torch.device,
              networks: str) -> float:
    from genbench.core.ensemble import train_together
    from genbench.core.solver import get_solver_class

    solvers = []
    for seed in range(k):
        torch.manual_seed(seed)
        solvers.append(get_solver_class(name)(z.shape[1], {"steps": steps}).to(device))
    return _timed(lambda: train_together(solvers, [z] * k, networks=networks), device)


def run_seeds(b: TimeBudget, log: Any = print) -> dict[str, Any]:
    device = torch.device(b.device)
    z = _seed_data(device)
    modes = [(mode, mode) for mode in b.seed_networks]
    rows = []
    threads_before = torch.get_num_threads()
    try:
        for name in b.seed_solvers:
            for threads in b.threads:
                torch.set_num_threads(threads)
                times: dict[str, list[float]] = {}
                _solo(name, z, 10, device)  # warm-up, not kept
                _together(name, z, 10, max(b.seed_counts), device, modes[0][1])
                for _ in range(b.rounds):
                    times.setdefault("solo", []).append(_solo(name, z, b.seed_steps, device))
                    for k in b.seed_counts:
                        for mode, vec in modes:
                            times.setdefault(f"{k}:{mode}", []).append(
                                _together(name, z, b.seed_steps, k, device, vec))
                for key, values in times.items():
                    if key == "solo":
                        continue
                    k, mode = key.split(":")
                    rows.append({"solver": name, "threads": threads, "seeds": int(k),
                                 "mode": mode, "solo_ms_per_step": 1e3 * statistics.median(
                                     times["solo"]) / b.seed_steps,
                                 "together_ms_per_step": 1e3 * statistics.median(values)
                                 / b.seed_steps,
                                 "together_vs_one_seed": _median_ratio(values, times["solo"])})
                    log(f"[time/seeds] {name} {threads} thread(s) {k} seeds ({mode}): "
                        f"{rows[-1]['together_vs_one_seed']:.2f}x one seed's wall time")
    finally:
        torch.set_num_threads(threads_before)
    return {"budget": asdict(b), "rows": rows}


def run_time(b: TimeBudget, log: Any = print, parts: tuple[str, ...] = ("ot", "seeds"),
             ) -> dict[str, Any]:
    out: dict[str, Any] = {"device": b.device}
    for part, fn in (("ot", run_ot), ("seeds", run_seeds)):
        if part in parts:
            before = os.getloadavg()
            out[part] = fn(b, log) | {"load_average": [before, os.getloadavg()],
                                      "date": time.strftime("%Y-%m-%d %H:%M")}
    return out


def _x(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _load(part: dict[str, Any]) -> str:
    before, after = part.get("load_average") or [[float("nan")], [float("nan")]]
    return (f"Run {part.get('date')}; load average (1 min) {before[0]:.1f} before, "
            f"{after[0]:.1f} after "
            "(2 cores: above ~1 the second core is not free for the plan's worker).")


def markdown_time(section: dict[str, Any]) -> list[str]:
    """The ``time`` section of ``perf.md``."""
    lines = ["## Time to a verdict: the OT plan off the critical path, seeds together", "",
             f"Device {section.get('device')}. Interleaved rounds; ratios are medians of "
             "per-round ratios of wall times.", ""]
    ot = section.get("ot")
    if ot:
        b = ot["budget"]
        lines += [f"### OT-CFM step, batch {b['ot_batch']}, width {b['hidden']}, depth "
                  f"{b['depth']}, {b['dataset']}, {b['ot_steps']} steps x {b['rounds']} rounds",
                  "", _load(ot), "",
                  "| way | median ms/step (wall) | per round | main thread CPU ms/step |",
                  "|---|---|---|---|"]
        cpu = ot.get("main_thread_cpu_ms_per_step", {})
        for label, values in ot["ms_per_step"].items():
            lines.append(f"| {label} | {statistics.median(values):.2f} | "
                         f"{', '.join(f'{v:.2f}' for v in values)} | "
                         f"{statistics.median(cpu[label]) if label in cpu else float('nan'):.2f} |")
        lines += ["", f"- prefetched / inline: **{_x(ot['prefetch_vs_inline'])}**; "
                  f"max(network alone, plan alone) = {ot['expected_ms_max']:.2f} ms/step "
                  "(what the prefetching step can approach)"]
        if ot.get("prefetch_vs_torchcfm") is not None:
            lines.append(f"- prefetched / torchcfm: **{_x(ot['prefetch_vs_torchcfm'])}** wall "
                         f"(target <= 0.67x); inline / torchcfm: {_x(ot['inline_vs_torchcfm'])}")
            lines.append("- main-thread CPU (the step's critical path when a second core is free "
                         "for the plan): prefetched / inline "
                         f"{_x(ot.get('prefetch_vs_inline_main_cpu'))}, prefetched / torchcfm "
                         f"{_x(ot.get('prefetch_vs_torchcfm_main_cpu'))}")
        else:
            lines.append(f"- torchcfm not run: {ot.get('torchcfm_skipped')}")
        if ot.get("w2_euler100"):
            lines.append("- W2 (Euler 100 steps, 1,000 points): " + ", ".join(
                f"{k} {v:.4f}" for k, v in ot["w2_euler100"].items()))
        lines.append("")
    seeds = section.get("seeds")
    if seeds:
        lines += ["### K seeds trained together against one seed alone (default sizes, "
                  f"{seeds['budget']['seed_steps']} steps)", "", _load(seeds), "",
                  "Together = each seed's regression (inputs, target, weight) drawn from its "
                  "own stream, then one stacked forward/backward of the K networks and one "
                  "optimiser step (`genbench.core.ensemble`). The previous way (each seed's "
                  "loss run twice, record then replay, one network call per seed) measured "
                  "2.70-3.6x one seed for 3 seeds. Target: 3 seeds <= 1.6x one seed on 2 "
                  "cores, which needs the second core free (see docs/performance.md).", "",
                  "| solver | threads | seeds | networks | one seed ms/step | together "
                  "ms/step | together / one seed | together / (K x one seed) |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in seeds["rows"]:
            lines.append(f"| {r['solver']} | {r['threads']} | {r['seeds']} | {r['mode']} | "
                         f"{r['solo_ms_per_step']:.2f} | {r['together_ms_per_step']:.2f} | "
                         f"{_x(r['together_vs_one_seed'])} | "
                         f"{_x(r['together_vs_one_seed'] / r['seeds'])} |")
        one = {(r["solver"], r["threads"]): r["solo_ms_per_step"] for r in seeds["rows"]}
        slow = sorted({f"{name} at {t} threads" for (name, t), ms in one.items()
                       if t > 1 and ms > 1.5 * one.get((name, 1), ms)})
        if slow:
            lines += ["", f"Oversubscribed, not a measurement of the method: one seed of "
                      f"{', '.join(slow)} ran over 1.5x slower than at 1 thread (other "
                      "processes held the cores)."]
        lines.append("")
    return lines
