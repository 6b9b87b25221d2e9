"""What the calibrated verdict costs a default job's evaluation.

The default job's data set (moons, n_test = 2000, identity codec) scored by the harness with
``eval.floor_draws=0`` (the single floor draw of before) and with the default 49 draws, the
draws' cache warm (they are paid once per data set), alternating, ``--repeats`` times, in one
process so both see the same machine load. The first, cold call's seconds are the one-off
floor cost.

    nice -n 10 python benchmarks/verdict_cost.py    # ~5 min on one core
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
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
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="a cache that may already hold the floor draws (default: a fresh one)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    config = {"name": args.dataset} | ({"dim": args.dim} if args.dim else {})
    splits = build_dataset(config, seed=0)
    with tempfile.TemporaryDirectory() as fresh:
        cache = str(args.cache_dir or fresh)
        ae, _ = get_autoencoder({"name": "identity"}, config, cache)
        rng = np.random.default_rng(1)
        x_gen = (torch.as_tensor(splits.sampler(len(splits.test), rng), dtype=torch.float32)
                 if splits.sampler else splits.train[: len(splits.test)])
        z_gen = ae.encode(x_gen)
        base = EvalConfig(plot=False)

        def once(cfg: EvalConfig) -> float:
            start = time.perf_counter()
            Evaluation(cfg, cache_dir=cache)(x_gen=x_gen, z_gen=z_gen, splits=splits, ae=ae,
                                             solver=None)
            return time.perf_counter() - start

        cold = once(base)  # fills the floor-draw cache (if it was not filled)
        off, on = [], []
        for _ in range(args.repeats):
            off.append(once(replace(base, floor_draws=0)))
            on.append(once(base))
    result = {"dataset": config, "n_test": len(splits.test), "floor_draws": base.floor_draws,
              "cold_seconds": cold, "eval_seconds_single_floor": off,
              "eval_seconds_verdict": on,
              "ratio_median": statistics.median(on) / statistics.median(off)}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
