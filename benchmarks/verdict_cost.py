"""What the calibrated verdict costs a default job's evaluation, cold and warm.

The default job's data set (moons, n_test = 2000, identity codec) scored by the harness:
first on an empty cache (*cold*: the first job on a data set, which computes the
``eval.floor_draws`` = 49 reference draws), then ``--repeats`` times with the draws cached
(*warm*), alternating with ``eval.floor_draws=0`` (the single floor draw of before the
verdict), all in one process so they see the same machine load. Wall and CPU seconds (CPU:
every thread of the process) of each.

    nice -n 10 python benchmarks/verdict_cost.py                  # ~2 min on one core
    python benchmarks/verdict_cost.py --workers 1 --out cost.json  # the draws on one thread
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genbench.codecs import get_autoencoder  # noqa: E402
from genbench.core.config import EvalConfig  # noqa: E402
from genbench.data import build_dataset  # noqa: E402
from genbench.eval.harness import Evaluation  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="moons")
    ap.add_argument("--dim", type=int, default=None, help="gmm's dimension")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None,
                    help="eval.floor_workers (default: the config's, 0 = every usable core)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="a cache that may already hold the floor draws (default: a fresh one)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    config = {"name": args.dataset} | ({"dim": args.dim} if args.dim else {})
    splits = build_dataset(config, seed=0)
    base = EvalConfig(plot=False)
    if args.workers is not None:
        if "floor_workers" not in {f.name for f in fields(EvalConfig)}:
            raise SystemExit("--workers: this checkout's EvalConfig has no floor_workers")
        base = replace(base, floor_workers=args.workers)
    with tempfile.TemporaryDirectory() as fresh:
        cache = str(args.cache_dir or fresh)
        ae, _ = get_autoencoder({"name": "identity"}, config, cache)
        rng = np.random.default_rng(1)
        x_gen = (torch.as_tensor(splits.sampler(len(splits.test), rng), dtype=torch.float32)
                 if splits.sampler else splits.train[: len(splits.test)])
        z_gen = ae.encode(x_gen)

        def once(cfg: EvalConfig) -> tuple[float, float]:
            wall, cpu = time.perf_counter(), time.process_time()
            Evaluation(cfg, cache_dir=cache)(x_gen=x_gen, z_gen=z_gen, splits=splits, ae=ae,
                                             solver=None)
            return time.perf_counter() - wall, time.process_time() - cpu

        cold = once(base)  # fills the floor-draw cache (if it was not filled)
        off, on = [], []
        for _ in range(args.repeats):
            off.append(once(replace(base, floor_draws=0)))
            on.append(once(base))
    med = {name: [statistics.median(v[i] for v in runs) for i in (0, 1)]
           for name, runs in (("single_floor", off), ("verdict_warm", on))}
    result = {"dataset": config, "n_test": len(splits.test), "floor_draws": base.floor_draws,
              "floor_workers": getattr(base, "floor_workers", None),
              "usable_cores": len(os.sched_getaffinity(0)),
              "load_1min": os.getloadavg()[0],
              "cold_wall_s": cold[0], "cold_cpu_s": cold[1],
              "single_floor_wall_s": med["single_floor"][0],
              "single_floor_cpu_s": med["single_floor"][1],
              "warm_wall_s": med["verdict_warm"][0], "warm_cpu_s": med["verdict_warm"][1],
              "warm_over_single_cpu": med["verdict_warm"][1] / med["single_floor"][1]}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
