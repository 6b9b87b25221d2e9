"""What the performance measurements found, what was changed, and the figures before/after.

:data:`FINDINGS` is kept by hand (each problem, where, what was done about it); the
before/after table is computed: "before" is the snapshot stored under ``"before"`` in
``perf.json`` (the run that found the problems), "after" the current sections of the same
file, so re-running ``benchmarks/perf.py`` refreshes the right-hand column.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FINDINGS", "before_after", "findings"]

# (where, problem, what was done)
FINDINGS: list[tuple[str, str, str]] = [
    ("`solvers/ode.py` `_solve`",
     "`torch.tensor([t0, t1], device=...)` (a blocking host-to-device copy) and, in the "
     "fixed-step grid, `float(t[0])`, `float(t[-1])`: 3 syncs per solve, i.e. per JKO "
     "training step and per sampling call",
     "**fixed**: the times are `torch.linspace` of `_solve`'s own Python floats, made on the "
     "device; the grid reads them from the closure (torchdiffeq hands it unflipped times)"),
    ("`solvers/nets.py` `TimeMLP.forward`",
     "`torch.as_tensor(float t, device=)`: one blocking copy per DDPM sampling step",
     "**fixed**: `torch.full` for Python numbers (pytorch/pytorch#120996)"),
    ("`solvers/lsb.py` `_sample`",
     "`int(s)` on torchsde's device clock: 2 syncs per SDE step",
     "**fixed**: the grid lives on the device; the step index is `floor`/`clamp` and "
     "`index_select`, the diffusion an expanded device scalar"),
    ("`solvers/sde.py` `SDE.f` (the repeated-call cache)",
     "`bool(t == last[0])`: one sync per sampling call",
     "**fixed**: the state is matched by identity and the time not compared; "
     "tests/test_lsb.py shows the cached and uncached paths are equal for every torchsde "
     "method"),
    ("`genbench/training.py` `make_optimizer`, `EMA`",
     "per-parameter AdamW loop (0.48 ms of a ~14 ms cfm step) and an EMA `lerp_` loop with "
     "its lists rebuilt every step (0.08 ms)",
     "**fixed**: `AdamW(fused=True)` with a fallback (0.20 ms), one `_foreach_lerp_` over "
     "lists built once (0.03 ms), EMA weights within 1e-7 of before"),
    ("`solvers/cfm.py` `ot_pairs`",
     "the exact plan is solved on the host (POT's network simplex, as in torchcfm); then "
     "`n` pairs were resampled from it by `torch.multinomial`",
     "**changed**: equal batches give a permutation plan, so rows are paired with their "
     "match (the resampling's expectation: no duplicated or dropped rows, no multinomial); "
     "the host round trip is inherent to the exact coupling and stays"),
    ("`solvers/nets.py` time embedding of cfm and pfode",
     "sinusoids up to frequency 200 make the field vary fast in t, so dopri5 took 3-5x the "
     "steps of torchcfm's plain-t MLP at the same W2",
     "**fixed**: `SMOOTH_TIME_FREQUENCY = 20` for the two continuous-time ODE solvers (ddpm's "
     "discrete steps and lsb keep 200; jko already slows t by `TIME_SCALE`); quality "
     "re-checked in benchmarks/results/quality.md"),
    ("torchdiffeq and torchsde step control",
     "the libraries compare times on the device once per step (torchdiffeq's fixed grid, "
     "torchsde's clock and Brownian interval); torch.optim's `.item()` reads are host "
     "counters, not syncs",
     "**left**: not genbench's code; JKO pays them per training step because it trains "
     "through `odeint`"),
    ("`genbench/metrics/w2.py` on CPU",
     "above `max_exact = 5000` the default switches to Sinkhorn, which on a CPU is 25-40x "
     "slower than the exact solver at equal n",
     "**fixed**: `eval.max_exact` 5000 -> 10,000 (exact stays feasible, ~0.8 GB), and "
     "`eval.large_n_method: auto` takes Sinkhorn on a GPU, sliced W2 on a CPU (the method is "
     "recorded and the floor uses the same one)"),
]


def findings() -> list[str]:
    lines = ["### Problems found and what was done", "", "| # | where | problem | done |",
             "|---|---|---|---|"]
    lines += [f"| {i} | {where} | {problem} | {done} |"
              for i, (where, problem, done) in enumerate(FINDINGS, 1)]
    return lines + [""]


def _fmt(value: Any, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def before_after(payload: dict[str, Any]) -> list[str]:
    """The headline figures of the stored "before" snapshot next to the current sections."""
    before = payload.get("before")
    if not before:
        return []
    rows: list[tuple[str, str, str]] = []
    peer = {f"{r['dataset']}/{r['method']}": r for r in (payload.get("peer") or {}).get(
        "summary", [])}
    for key, old in before["peer"].items():
        dataset, method = key.split("/")
        new = peer.get(key, {})
        if method == "cfm (ot)":
            rows.append((f"cfm (ot) train ms/step cpu, × torchcfm ({dataset}; one run per "
                         "seed, mean of 2 seeds: ±8 % from run to run)",
                         _fmt(old["ms_per_step_cpu_vs_peer"], ".2f") + "×",
                         _fmt(new.get("ms_per_step_cpu_vs_peer"), ".2f") + "×"))
            rows.append((f"cfm (ot) W2 at 100 Euler steps, × torchcfm ({dataset})",
                         _fmt(old["matched_w2_vs_peer"], ".2f") + "×",
                         _fmt(new.get("matched_w2_vs_peer"), ".2f") + "×"))
        if method in ("cfm (ot)", "cfm (independent)", "pfode"):
            rows.append((f"{method} default sampler NFE / sample cpu s, 1,000 points "
                         f"({dataset})",
                         f"{_fmt(old['default_nfe'], '.0f')} / "
                         f"{_fmt(old['default_sample_cpu_s'], '.2f')}",
                         f"{_fmt(new.get('default_nfe'), '.0f')} / "
                         f"{_fmt(new.get('default_sample_cpu_s'), '.2f')}"))
    loop_before = {r["variant"]: r for r in before.get("loop_whatif", [])
                   if r["method"] == "cfm (ot)"}
    loop_after = {r["method"]: r for r in (payload.get("hotpaths") or {}).get("loop", [])}
    if "current" in loop_before and "cfm (ot)" in loop_after:
        rows.insert(0, ("**cfm (ot) train ms/step cpu, × torchcfm: interleaved, best of 4 "
                        "rounds** (the robust figure)",
                        _fmt(loop_before["current"]["vs_peer"], ".2f") + "×",
                        _fmt(loop_after["cfm (ot)"]["vs_peer"], ".2f") + "×"))
    audit = {r["solver"]: r for r in (payload.get("hotpaths") or {}).get("audit", [])}
    for solver, old in before["host_reads_per_step"].items():
        new = audit.get(solver, {})
        rows.append((f"{solver}: genbench host reads per train / sample step",
                     f"{old['train']:g} / {old['sample']:g}",
                     f"{(new.get('train_by_owner') or {}).get('genbench', 0.0):g} / "
                     f"{(new.get('sample_by_owner') or {}).get('genbench', 0.0):g}"
                     if new else "–"))
    sweep = payload.get("sweep")
    load = before["sweep_load_average_before"][0]
    rows.append(("quick sweep wall time (5 solvers, moons)",
                 f"{before['sweep_wall_s']:.0f} s (load {load:.1f})",
                 f"{sweep['wall_s']:.0f} s (load {sweep['load_average_before'][0]:.1f})"
                 if sweep and sweep.get("date") != before.get("sweep_date") else "–"))
    return ["## Before and after", "", f"Before: {before['source']}. After: the sections "
            "below. Host reads: per step, from this repository's code (the training loss read "
            "once per `log_every` steps counts 0.1; cfm's OT plan crosses to the host by "
            "design, 2 per step).", "", "| figure | before | after |", "|---|---|---|",
            *[f"| {a} | {b} | {c} |" for a, b, c in rows], ""]
