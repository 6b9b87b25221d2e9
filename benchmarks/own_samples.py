"""Own samples: torchcfm's samples scored by ``genbench-eval --samples`` match the job's score.

1. A genbench job whose solver is torchcfm's OT-CFM (its ``ExactOptimalTransportConditional
   FlowMatcher`` and ``models.MLP``, plugged in as a 30-line solver, Euler sampling) runs
   through the pipeline on moons and scores its own samples.
2. Those generated points, saved as a plain ``.npy`` (as a torchcfm user saves theirs), are
   scored by the real command ``genbench-eval --samples FILE dataset=moons ...`` (a
   subprocess): W2, floor, ratio, TV and MMD must equal the job's.
3. torchcfm trained outside genbench, on the raw data points (no encoder at all), is scored
   the same way: the path for samples from any generator.

    python benchmarks/own_samples.py [--steps 1000]

Writes ``benchmarks/results/own_samples.{json,md}``. Needs torchcfm
(``pip install --no-deps torchcfm``: it would otherwise replace torch).

References:
    Tong et al., "Improving and Generalizing Flow-Based Generative Models with Minibatch
    Optimal Transport", TMLR 2024 (torchcfm).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genbench.core.solver import (  # noqa: E402
    Solver,
    SolverConfig,
    register_solver,  # noqa: E402
)

RESULTS = Path(__file__).resolve().parent / "results"
SAME = ("data_w2", "data_w2_floor", "data_w2_ratio", "data_tv", "data_mmd", "data_mmd_ratio")
DATA = ["dataset=moons", "dataset.n_train=4000", "dataset.n_test=1000"]


@dataclass
class TorchCFMConfig(SolverConfig):
    lr: float = 2e-3
    batch_size: int = 256
    sample_steps: int = 100


@register_solver("torchcfm")
class TorchCFM(Solver):
    """torchcfm's OT-CFM as a genbench solver: its matcher and MLP, Euler sampling."""

    Config = TorchCFMConfig
    stochastic_sampler = False

    def build(self) -> None:
        from torchcfm.conditional_flow_matching import (
            ExactOptimalTransportConditionalFlowMatcher,
        )
        from torchcfm.models.models import MLP

        self.net = MLP(self.dim, w=self.config.hidden, time_varying=True)
        self.matcher = ExactOptimalTransportConditionalFlowMatcher(sigma=0.0)

    def loss(self, z: Tensor) -> Tensor:
        t, xt, ut = self.matcher.sample_location_and_conditional_flow(torch.randn_like(z), z)
        return (self.net(torch.cat([xt, t[:, None]], dim=-1)) - ut).pow(2).mean()

    def fit(self, z: Tensor, *, steps: int | None = None, callback: Any = None,
            progress: bool = False) -> dict[str, Any]:
        z = self.check_data(z)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.config.lr)
        start, curve = time.perf_counter(), []
        for step in range(1, (steps or self.config.steps) + 1):
            loss = self.loss(z[torch.randint(len(z), (min(self.config.batch_size, len(z)),))])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % self.config.log_every == 0:
                curve.append([step, float(loss.detach())])
        self._fitted.fill_(True)
        return {"steps": steps or self.config.steps, "final_loss": curve[-1][1],
                "loss_curve": curve, "train_seconds": time.perf_counter() - start}

    @torch.no_grad()
    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        x, h = torch.randn(n, self.dim, generator=generator, device=self.device), 1.0
        steps = self.config.sample_steps
        for i in range(steps):  # Euler on a uniform grid, as torchcfm's tutorials sample
            t = torch.full((n, 1), i / steps, device=self.device)
            x = x + h / steps * self.net(torch.cat([x, t], dim=-1))
        self.nfe = steps
        return x


def score_file(path: Path, out: Path, name: str) -> dict[str, Any]:
    """``genbench-eval --samples`` in a subprocess: the command a user runs."""
    cmd = [sys.executable, "-m", "genbench.sweep.eval_cli", "--samples", str(path), *DATA,
           "eval.plot=false", "progress=false", "--name", name, "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env=os.environ | {"OMP_NUM_THREADS": "1"}, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"genbench-eval failed: {proc.stderr[-2000:]}")
    return json.loads((out / "results.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from hydra import compose, initialize_config_module

    from genbench.run.pipeline import run
    from genbench.sweep.schemas import register_schemas

    register_schemas()
    rows: dict[str, Any] = {"steps": args.steps, "data": DATA}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with initialize_config_module("genbench_configs", version_base="1.3"):
            cfg = compose("config", overrides=[*DATA, "~solver", "+solver.name=torchcfm",
                                               f"+solver.steps={args.steps}", "eval.plot=false",
                                               "progress=false"])
        job = run(cfg, tmp / "job")
        if job["status"] != "ok":
            raise RuntimeError(job.get("traceback"))
        x_gen = np.load(tmp / "job" / "samples.npz")["x_gen"]
        np.save(tmp / "torchcfm_moons.npy", x_gen)
        scored = score_file(tmp / "torchcfm_moons.npy", tmp / "scored", "torchcfm")
        rows["job"] = {k: job["metrics"][k] for k in SAME}
        rows["samples"] = {k: scored["metrics"][k] for k in SAME}
        rows["equal"] = {k: rows["job"][k] == rows["samples"][k] for k in SAME}

        # torchcfm outside genbench: trained on the raw points, its samples scored alike.
        from benchmarks.perf_peer import PeerBudget, sample_torchcfm, train_torchcfm
        from genbench.data import build_dataset

        splits = build_dataset({"name": "moons", "n_train": 4000, "n_test": 1000}, seed=0)
        model, clock = train_torchcfm(splits.train, PeerBudget(steps=args.steps), seed=0)
        x, _, _ = sample_torchcfm(model, 1000, 2, seed=0, steps=100)
        np.save(tmp / "torchcfm_outside.npy", x.numpy())
        outside = score_file(tmp / "torchcfm_outside.npy", tmp / "outside", "torchcfm-outside")
        rows["outside"] = {k: outside["metrics"][k] for k in SAME}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "own_samples.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["# Own samples: torchcfm scored by genbench-eval --samples", "",
             f"moons, 4000 training / 1000 test points, {args.steps} OT-CFM steps, Euler 100.",
             "", "| metric | job (torchcfm as a genbench solver) | --samples (its .npy) | equal "
             "| torchcfm outside genbench |", "|---|---|---|---|---|"]
    for k in SAME:
        lines.append(f"| {k} | {rows['job'][k]:.6g} | {rows['samples'][k]:.6g} | "
                     f"{rows['equal'][k]} | {rows['outside'][k]:.6g} |")
    (RESULTS / "own_samples.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
