"""``benchmarks/results/perf.md`` from the merged ``perf.json``: tables with ratios.

References:
    Tong et al., "Improving and Generalizing Flow-Based Generative Models with Minibatch
    Optimal Transport", TMLR 2024 (torchcfm, the peer).
"""

from __future__ import annotations

from typing import Any

from perf_time import markdown_time

__all__ = ["markdown"]

PEER = "torchcfm OT-CFM"

def _f(value: Any, fmt: str = ".3g") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return format(value, fmt)
    return str(value)


def _x(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _meta_line(meta: dict[str, Any]) -> str:
    m = meta.get("machine", {})
    return (f"`{meta.get('command', 'python benchmarks/perf.py')}`, {meta.get('date')}; "
            f"{m.get('cpus')} CPU cores, torch {m.get('torch')} "
            f"({m.get('torch_threads')} thread), POT {m.get('ot')}, torchdiffeq "
            f"{m.get('torchdiffeq')}, torchsde {m.get('torchsde')}, torchcfm "
            f"{m.get('torchcfm') or 'not installed'}; load average at the end "
            f"{m.get('load_average')}. {meta.get('shared_machine_note', '')}.")


def _peer(section: dict[str, Any], loop: dict[str, Any] | None = None) -> list[str]:
    """The side-by-side tables; ``loop`` is the interleaved cfm (ot) timing, when measured."""
    b = section["budget"]
    lines = ["## Side by side with torchcfm", "",
             f"Same standardised latents (genbench's identity encoder), width {b['hidden']}, "
             f"depth {b['depth']}, batch {b['batch_size']}, lr {b['lr']}, {b['steps']} steps "
             f"(jko: its default width 64, the steps split over its blocks). torchcfm: "
             f"`ExactOptimalTransportConditionalFlowMatcher`, `models.MLP`, Adam, torchdiffeq "
             f"Euler. genbench: the shared loop (AdamW, warm-up + cosine, clipping, EMA). "
             f"W2: exact, {b['n_eval']} generated vs {b['n_eval']} test points, data space. "
             f"Ratios ('×') are method / torchcfm: below 1 is faster or better. "
             f"Seeds {list(b['seeds'])} for torchcfm and cfm (ot), the first for the rest.",
             "", _meta_line(section.get("meta", {})), ""]
    if section.get("skipped"):
        lines += [f"**torchcfm part skipped:** {section['skipped']}", ""]
    steps = b["sample_steps"]
    for dataset in b["datasets"]:
        floor = section["floors"].get(dataset)
        lines += [f"### {dataset} (W2 floor, test vs reference: {_f(floor, '.4f')})", "",
                  f"| method | ms/step cpu | × | ms/step wall | × | sample s, {steps} steps | × | "
                  f"W2, {steps} steps | × | default sampler NFE | sample s | W2 | × |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in (r for r in section["summary"] if r["dataset"] == dataset):
            lines.append(
                f"| {r['method']} | {_f(r['ms_per_step_cpu'])} | "
                f"{_x(r['ms_per_step_cpu_vs_peer'])} | {_f(r['ms_per_step_wall'])} | "
                f"{_x(r['ms_per_step_wall_vs_peer'])} | {_f(r['matched_sample_cpu_s'])} | "
                f"{_x(r['matched_sample_cpu_s_vs_peer'])} | {_f(r['matched_w2'], '.4f')} | "
                f"{_x(r['matched_w2_vs_peer'])} | {_f(r['default_nfe'], '.0f')} | "
                f"{_f(r['default_sample_cpu_s'])} | {_f(r['default_w2'], '.4f')} | "
                f"{_x(r['default_w2_vs_peer'])} |")
        pair = {r["method"]: r for r in section["summary"] if r["dataset"] == dataset}
        if PEER in pair and "cfm (ot)" in pair:
            p, c = pair[PEER], pair["cfm (ot)"]
            # One run per seed drifts by ~8 % with the machine; the interleaved best-of-rounds
            # timing (hot paths section) is the figure the target is judged on when present.
            step = loop["vs_peer"] if loop else c["ms_per_step_cpu_vs_peer"]
            how = (f"{_x(step)} cpu interleaved best of rounds; this table's single runs "
                   f"{_x(c['ms_per_step_cpu_vs_peer'])}") if loop else f"{_x(step)} cpu"
            lines += ["", f"W2 by seed ({steps}-step Euler): torchcfm "
                      f"{[round(v, 4) for v in p['matched_w2_by_seed']]}, cfm (ot) "
                      f"{[round(v, 4) for v in c['matched_w2_by_seed']]}.",
                      f"Targets: cfm step time ≤ torchcfm: "
                      f"**{'met' if step <= 1 else 'not met'}** ({how}); cfm W2 ≤ torchcfm: "
                      f"**{'met' if c['matched_w2_vs_peer'] <= 1 else 'not met'}** "
                      f"({_x(c['matched_w2_vs_peer'])})."]
        lines.append("")
    if section.get("coupling"):
        lines += ["### The OT coupling alone (2-D, ms per minibatch, CPU)", "",
                  "| batch | method | ms/call cpu | ms/call wall |", "|---|---|---|---|"]
        lines += [f"| {r['batch']} | {r['method']} | {_f(r['ms_per_call_cpu'])} | "
                  f"{_f(r['ms_per_call_wall'])} |" for r in section["coupling"]]
        lines.append("")
    return lines


def _default_cost(payload: dict[str, Any]) -> list[str]:
    """Seconds per 10,000 samples at each solver's default sampler, from the two sections."""
    peer, throughput = payload.get("peer"), payload.get("throughput")
    if not peer or not throughput:
        return []
    per_nfe = {r["method"].split(" (")[0] if r["method"].startswith("jko") else r["method"]:
               r["sampling"]["ms_per_nfe_per_10k_cpu"] for r in throughput["rows"]
               if r.get("sampling") and r["dim"] == 2}
    dataset = peer["budget"]["datasets"][0]
    lines = ["", f"Default samplers, 10,000 samples in 2-D: NFE measured on {dataset} "
             "(side-by-side section) × CPU ms per NFE per 10,000 samples (above); an "
             "estimate, not a run.", "", "| method | default NFE | ms/NFE | s per 10k (est.) |",
             "|---|---|---|---|"]
    for r in peer["summary"]:
        if r["dataset"] != dataset or r["method"] not in per_nfe or r["default_nfe"] is None:
            continue
        cost = per_nfe[r["method"]]
        lines.append(f"| {r['method']} | {r['default_nfe']:.0f} | {cost:.1f} | "
                     f"{r['default_nfe'] * cost / 1e3:.1f} |")
    return lines + [""]


def _throughput(section: dict[str, Any]) -> list[str]:
    b = section["budget"]
    rows = section["rows"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cols = [(d, bs) for d in b["dims"] for bs in b["batches"]]
    lines = ["## Throughput", "",
             "Training steps per second of CPU time (the shared loop, each solver's default "
             "config except the batch; N(0, I) latents; jko: one block). "
             f"Sampling: {b['n_samples']:,} points with a fixed {b['sample_steps']}-step "
             f"sampler (Euler for the ODE solvers), best of {b.get('sample_repeats', 1)} "
             "draws; cfm (ot) and cfm (independent) share one network and sampler, so their "
             "difference shows the noise left by the other load.", "",
             _meta_line(section.get("meta", {})), "",
             "| method | " + " | ".join(f"d={d} b={bs}" for d, bs in cols) + " |",
             "|---|" + "---|" * len(cols)]
    index = {(r["method"], r["dim"], r["batch"]): r for r in rows}
    for m in methods:
        cells = [_f(index.get((m, d, bs), {}).get("steps_per_s_cpu"), ".1f") for d, bs in cols]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "Batch 1024 against 256 (time per step ratio): "
              + "; ".join(f"{m} " + ", ".join(
                  f"d={d} {_x(_rate(index, m, d, b['batches']))}" for d in b["dims"])
                  for m in methods), ""]
    lines += ["Sampling: samples/s (CPU), seconds per 10,000 samples, and ms per network "
              "evaluation per 10,000 samples.", "",
              "| method | NFE | " + " | ".join(f"d={d}: samples/s | s/10k | ms/NFE"
                                            for d in b["dims"]) + " |",
              "|---|---|" + "---|---|---|" * len(b["dims"])]
    for m in methods:
        cells, nfe = [], None
        for d in b["dims"]:
            s = index.get((m, d, b["batches"][0]), {}).get("sampling") or {}
            nfe = s.get("nfe", nfe)
            cells += [_f(s.get("samples_per_s_cpu"), ".0f"), _f(s.get("s_per_10k_cpu"), ".2f"),
                      _f(s.get("ms_per_nfe_per_10k_cpu"), ".1f")]
        lines.append(f"| {m} | {nfe} | " + " | ".join(cells) + " |")
    return lines + [""]


def _rate(index: dict, method: str, dim: int, batches: list[int]) -> float | None:
    small, large = (index.get((method, dim, bs), {}) for bs in (batches[0], batches[-1]))
    if not small or not large:
        return None
    return small["steps_per_s_cpu"] / large["steps_per_s_cpu"]


def _eval(section: dict[str, Any]) -> list[str]:
    lines = ["## Evaluation cost", "",
             f"`genbench.eval.metrics.w2` between two independent {section['budget']['dataset']} "
             "samples of n points each (CPU, one thread).", "",
             _meta_line(section.get("meta", {})), "",
             "| method | n | cpu s | wall s | W2 | cost matrix MiB |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['n']:,} | {_f(r['cpu_s'])} | {_f(r['wall_s'])} | "
              f"{_f(r['w2'], '.4f')} | {_f(r['cost_matrix_mib'], '.0f')} |"
              for r in section["w2"]]
    fc = section["floor_cache"]
    lines += ["", f"Floor cache (`genbench.eval.floors.floor_w2`, n = {fc['n']:,}, fresh cache "
              f"folder): first call {_f(fc['miss_cpu_s'])} s cpu, second call "
              f"{_f(fc['hit_cpu_s'])} s cpu (**{_f(fc['speedup_cpu'], '.0f')}× faster**), "
              f"file written under `floors/`: {fc['files_after_first_call']}, same value on the "
              f"hit: {fc['same_value_on_hit']}; a sample that differs in one coordinate writes "
              f"a second file: {fc['other_content_new_file']}.", ""]
    return lines


def _hotpaths(section: dict[str, Any]) -> list[str]:
    def owners(d: dict[str, float] | None, which: str) -> str:
        if d is None:
            return "–"
        if which != "library":
            return f"{d.get(which, 0.0):g}"
        items = [f"{k} {v:g}" for k, v in d.items() if k not in ("genbench", "optimizer")]
        return ", ".join(items) or "0"

    lines = ["## Host read-backs per step (syncs on a GPU)", "",
             "Counted calls of `.item()`, `float/bool/int(tensor)`, `.tolist()`, `.cpu()`, "
             "`.numpy()` per training step (fit at 20 and 40 steps, `log_every=10`) and per "
             "sampler step (10 and 20 steps), by calling file. `genbench` is this repository, "
             "`optimizer` the host-side step counters of torch.optim (not device syncs).", "",
             "| solver | train: genbench | train: libraries | train: optimizer | "
             "sample: genbench | sample: libraries | genbench locations (per step) |",
             "|---|---|---|---|---|---|---|"]
    for r in section["audit"]:
        locations = [f"`{k}` {v:g}" for k, v in {**r["train_per_step"],
                                                 **r.get("sample_per_step", {})}.items()
                     if k.startswith(("genbench/", "solvers/"))]
        lines.append(
            f"| {r['solver']} | {owners(r['train_by_owner'], 'genbench')} | "
            f"{owners(r['train_by_owner'], 'library')} | "
            f"{owners(r['train_by_owner'], 'optimizer')} | "
            f"{owners(r.get('sample_by_owner'), 'genbench')} | "
            f"{owners(r.get('sample_by_owner'), 'library')} | {', '.join(locations)} |")
    lines += ["", "(`genbench/core/training.py:128` at 0.1 per step is the loss read once per "
              "`log_every` steps, by design.)", "",
              "### The training loop against torchcfm's, interleaved", "",
              "cfm trained for 100 steps on 2-D N(0, I) latents (batch 256, width 256), each "
              "method once per round, best of the rounds (the least disturbed by other load).",
              "", "| method | ms/step cpu (best) | median | × torchcfm |", "|---|---|---|---|"]
    lines += [f"| {r['method']} | {_f(r['ms_per_step_cpu'])} | "
              f"{_f(r['median_ms_per_step_cpu'])} | {_x(r.get('vs_peer'))} |"
              for r in section.get("loop", [])]
    if section.get("components"):
        lines += ["", "### The parts of one training step (2-D, batch 256, width 256; CPU ms, "
                  "best of 5 blocks of 50 calls)", "", "| part | loop | ms cpu |", "|---|---|---|"]
        lines += [f"| {r['part']} | {r['loop']} | {r['ms_cpu']:.3f} |"
                  for r in section["components"]]
    if section.get("embedding"):
        lines += ["", "### Sampling cost against the time embedding's top frequency", "",
                  "`TimeMLP` embeds t with sinusoids up to `max_frequency`; cfm and pfode "
                  f"retrained on moons ({section['embedding'][0]['steps']} steps, seed 0) with "
                  "each, 1,000 samples, W2 exact against 1,000 test points (200 is what both "
                  "used before).", "",
                  "| solver | max_frequency | default sampler NFE | sample cpu s | W2 | × current "
                  "NFE | Euler-20 W2 |", "|---|---|---|---|---|---|---|"]
        base = {r["solver"]: r["default"]["nfe"] for r in section["embedding"] if r["current"]}
        lines += [f"| {r['solver']} | {r['max_frequency']:g}{' (current)' if r['current'] else ''}"
                  f" | {r['default']['nfe']} | {_f(r['default']['cpu_s'])} | "
                  f"{_f(r['default']['w2'], '.4f')} | "
                  f"{_x(r['default']['nfe'] / base[r['solver']])} | "
                  f"{_f(r['euler-20']['w2'], '.4f')} |" for r in section["embedding"]]
    return lines + [""]


def _sweep(section: dict[str, Any]) -> list[str]:
    lines = ["## The quick sweep", "",
             f"`genbench {section['command']}` (run once, fresh cache under the sweep "
             f"folder): **{section['wall_s']:.0f} s wall** ({section['wall_s'] / 60:.1f} min), "
             f"exit code {section['returncode']}, on {section['date']}; load average before "
             f"{[round(v, 1) for v in section['load_average_before']]}, after "
             f"{[round(v, 1) for v in section['load_average_after']]}.", "",
             "| job | status | train s | sample s | eval s | NFE | W2 ratio |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {j['job']} | {j['status']} | {_f(j['train_seconds'], '.1f')} | "
              f"{_f(j['sample_seconds'], '.2f')} | {_f(j['eval_seconds'], '.1f')} | "
              f"{_f(j['nfe'])} | {_f(j['data_w2_ratio'], '.2f')} |" for j in section["jobs"]]
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


NOTES_MARKER = ("<!-- Written by hand below this line: benchmarks/perf.py keeps it when it "
                "rebuilds the tables above. -->")


def with_notes(text: str, previous: str) -> str:
    """``text`` followed by the hand-written notes (what was found and done) of ``previous``."""
    if NOTES_MARKER not in previous:
        return text
    return text.rstrip() + "\n\n" + NOTES_MARKER + previous.split(NOTES_MARKER, 1)[1]


def markdown(payload: dict[str, Any]) -> str:
    lines = ["# Performance benchmark", "",
             "`python benchmarks/perf.py` (sections merge into `perf.json`; this file is "
             "rebuilt from it). CPU only, one thread per process. Ratios use CPU time, which "
             "other load inflates far less than wall time; each section prints the load "
             "average it ran under.", "", *before_after(payload)]
    for key, render in (("peer", _peer), ("throughput", _throughput), ("eval", _eval),
                        ("hotpaths", _hotpaths), ("time", markdown_time),
                        ("time_cuda", markdown_time), ("sweep", _sweep)):
        if key == "peer" and key in payload:
            loops = {r["method"]: r for r in payload.get("hotpaths", {}).get("loop", [])}
            lines += _peer(payload[key], loops.get("cfm (ot)"))
        elif key in payload:
            lines += render(payload[key])
        if key == "throughput":
            lines += _default_cost(payload)
    return "\n".join(lines) + "\n"
