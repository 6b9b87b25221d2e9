"""Performance benchmark: genbench side by side with torchcfm, throughput, evaluation cost.

Sections (each can be run alone; results merge into ``benchmarks/results/perf.json`` and
``perf.md`` is rebuilt from the merged file):

- ``peer``: torchcfm's OT-CFM against genbench ``cfm`` (coupling=ot) and every solver, same
  data, width, batch and steps: ms per training step, sampling time, W2 on 1,000 test points
  (:mod:`perf_peer`; skipped with a message when torchcfm is not installed).
- ``throughput``: training steps/s and samples/s per solver against dimension and batch
  (:mod:`perf_throughput`).
- ``eval``: exact / Sinkhorn / sliced W2 time against n, and the floor cache (:mod:`perf_eval`).
- ``hotpaths``: host read-backs per step (GPU syncs), the training loop interleaved with
  torchcfm's, and the sampling cost against the time embedding (:mod:`perf_hotpaths`).
- ``time``: time to a verdict: OT-CFM with the plan prefetched against inline and against
  torchcfm, and K seeds trained together against one seed (:mod:`perf_time`; ``--device
  cuda`` runs it on a GPU, see ``benchmarks/perf_cuda.sh``).
- ``sweep`` (only with ``--sweep``): the wall time of ``genbench -m experiment=quick
  launcher=joblib``.

    python benchmarks/perf.py                       # peer, throughput, eval, hotpaths (~10 min)
    python benchmarks/perf.py --sections peer --steps 2000
    python benchmarks/perf.py --sections eval --exact-sizes 1000 2000 4000 8000
    python benchmarks/perf.py --sections none --sweep   # the quick sweep alone
    python benchmarks/perf.py --sections time --time-rounds 3     # prefetch and seeds

Everything runs on one thread (``torch.set_num_threads(1)``); ratios use CPU time, which
contention from other processes inflates far less than wall time (both are reported).

References:
    Tong et al., "Improving and Generalizing Flow-Based Generative Models with Minibatch
    Optimal Transport", TMLR 2024 (torchcfm).
    Flamary et al., "POT: Python Optimal Transport", JMLR 2021.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = ("peer", "throughput", "eval", "hotpaths", "time")

__all__ = ["main", "run_sweep"]


def _log(message: str) -> None:
    print(message, flush=True)


def run_sweep(n_jobs: int | None = None) -> dict[str, Any]:
    """Run the quick sweep once into a fresh folder under /tmp (fresh cache); time it."""
    sweep_dir = Path(tempfile.mkdtemp(prefix="genbench-quick-", dir="/tmp"))
    genbench = Path(sys.executable).with_name("genbench")
    command = [str(genbench), "-m", "experiment=quick", "launcher=joblib", "progress=false",
               f"hydra.sweep.dir={sweep_dir}"]
    if n_jobs is not None:
        command.append(f"hydra.launcher.n_jobs={n_jobs}")
    env = os.environ | {"OMP_NUM_THREADS": "1", "GENBENCH_CACHE_DIR": str(sweep_dir / "cache"),
                        "WANDB_MODE": "disabled"}
    load_before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.run(command, cwd="/tmp", env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    jobs = []
    for path in sorted(sweep_dir.glob("*/results.json")):
        result = json.loads(path.read_text())
        m = result.get("metrics") or {}
        jobs.append({"job": path.parent.name, "status": result.get("status"),
                     **{k: m.get(k) for k in ("train_seconds", "sample_seconds", "eval_seconds",
                                              "nfe", "data_w2_ratio")}})
    _log(f"[sweep] {' '.join(command)}: {wall:.0f} s wall, exit {proc.returncode}, "
         f"{len(jobs)} jobs")
    return {"command": " ".join(command[1:]), "wall_s": wall, "returncode": proc.returncode,
            "n_jobs": n_jobs or "cores", "load_average_before": load_before,
            "load_average_after": os.getloadavg(), "jobs": jobs,
            "stderr_tail": proc.stderr[-2000:] if proc.returncode else ""}


def _load_note(before: tuple[float, float, float]) -> str:
    busy = before[0] > 0.5
    return (f"load average {before[0]:.1f} when the run started"
            + (": other work shared the cores, so wall times are inflated" if busy else
               ": an otherwise idle machine"))


def _merge(fresh: dict[str, Any]) -> dict[str, Any]:
    path = RESULTS / "perf.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    return previous | fresh


def main() -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", nargs="*", default=list(SECTIONS),
                        help=f"any of {SECTIONS}, or none")
    parser.add_argument("--sweep", action="store_true", help="also time the quick sweep")
    parser.add_argument("--sweep-jobs", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="peer step budget")
    parser.add_argument("--seeds", type=int, nargs="*", default=None, help="peer seeds")
    parser.add_argument("--datasets", nargs="*", default=None, help="peer data sets")
    parser.add_argument("--dims", type=int, nargs="*", default=None, help="throughput dims")
    parser.add_argument("--exact-sizes", type=int, nargs="*", default=None)
    parser.add_argument("--sinkhorn-sizes", type=int, nargs="*", default=None)
    parser.add_argument("--sliced-sizes", type=int, nargs="*", default=None)
    parser.add_argument("--device", default="cpu", help="device of the time section")
    parser.add_argument("--time-rounds", type=int, default=None, help="time: rounds")
    parser.add_argument("--time-parts", nargs="*", default=["ot", "seeds"],
                        choices=("ot", "seeds"), help="time: any of ot, seeds")
    parser.add_argument("--time-threads", type=int, nargs="*", default=None,
                        help="time: thread counts for the seeds part")
    parser.add_argument("--time-networks", nargs="*", default=None, choices=("stacked", "vmap"),
                        help="time: how the K networks run, any of stacked, vmap")
    parser.add_argument("--time-solvers", nargs="*", default=None,
                        choices=("ddpm", "pfode", "lsb", "cfm"),
                        help="time: solvers of the seeds part (those that batch seeds)")
    parser.add_argument("--no-write", action="store_true", help="print, do not save")
    parser.add_argument("--note", default="", help="a remark on the machine, kept with the run")
    args = parser.parse_args()
    unknown = set(args.sections) - set(SECTIONS) - {"none"}
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS} or none")

    from perf_clock import Clock, machine_info

    fresh: dict[str, Any] = {}
    load_before = os.getloadavg()
    with Clock() as total:
        if "peer" in args.sections:
            from perf_peer import PeerBudget, run_peer

            budget = PeerBudget()
            if args.steps:
                budget.steps = args.steps
            if args.seeds:
                budget.seeds = tuple(args.seeds)
            if args.datasets:
                budget.datasets = tuple(args.datasets)
            fresh["peer"] = run_peer(budget, _log)
        if "throughput" in args.sections:
            from perf_throughput import ThroughputBudget, run_throughput

            tb = ThroughputBudget()
            if args.dims:
                tb.dims = tuple(args.dims)
            fresh["throughput"] = run_throughput(tb, _log)
        if "eval" in args.sections:
            from perf_eval import EvalBudget, run_eval

            eb = EvalBudget()
            for key in ("exact_sizes", "sinkhorn_sizes", "sliced_sizes"):
                if getattr(args, key) is not None:
                    setattr(eb, key, tuple(getattr(args, key)))
            fresh["eval"] = run_eval(eb, _log)
        if "hotpaths" in args.sections:
            from perf_hotpaths import run_hotpaths

            fresh["hotpaths"] = run_hotpaths(_log)
        if "time" in args.sections:
            from perf_time import TimeBudget, run_time

            tb_time = TimeBudget(device=args.device)
            if args.time_rounds:
                tb_time.rounds = args.time_rounds
            if args.time_threads:
                tb_time.threads = tuple(args.time_threads)
            if args.time_networks:
                tb_time.seed_networks = tuple(args.time_networks)
            if args.time_solvers:
                tb_time.seed_solvers = tuple(args.time_solvers)
            key = "time" if args.device == "cpu" else f"time_{args.device.split(':')[0]}"
            fresh[key] = run_time(tb_time, _log, tuple(args.time_parts))
            earlier = _merge({}).get(key, {})  # keep the parts not re-run
            fresh[key] = {k: v for k, v in earlier.items() if k != "meta"} | fresh[key]
        if args.sweep:
            fresh["sweep"] = run_sweep(args.sweep_jobs) | {"date": time.strftime("%Y-%m-%d %H:%M")}
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "sections": args.sections,
            "sweep": args.sweep, "wall_s": total.wall, "cpu_s": total.cpu,
            "command": "python benchmarks/perf.py " + " ".join(sys.argv[1:]),
            "machine": machine_info(),
            "shared_machine_note": args.note or _load_note(load_before)}
    for section in fresh:
        fresh[section]["meta"] = meta
    from perf_report import markdown, with_notes

    payload = _merge(fresh)
    text = markdown(payload)
    if args.no_write:
        print(text)
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "perf.json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
    previous = (RESULTS / "perf.md").read_text() if (RESULTS / "perf.md").exists() else ""
    (RESULTS / "perf.md").write_text(with_notes(text, previous))
    _log(f"wrote {RESULTS / 'perf.json'} and perf.md ({total.wall:.0f} s wall, "
         f"{total.cpu:.0f} s cpu)")


if __name__ == "__main__":
    main()
