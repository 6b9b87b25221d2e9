"""Real sweep engines for the tests: a single-node SLURM cluster and a local Ray cluster.

Each fixture starts its engine once per test session and stops it at the end, and skips the
tests that use it, with the reason, when the engine cannot run here (not installed, not
root). The tests drive genbench only through its command line (``python -m genbench.cli``)
and read back what a sweep writes (``results.json``, ``report/``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLURM_LOCAL = ROOT / "scripts" / "slurm-local"
# Tiny jobs: about 5-15 s each on a loaded 2-core machine, most of it importing torch.
TINY = ["experiment=smoke", "dataset.n_train=500", "dataset.n_test=200", "solver.steps=50",
        "solver.sample_steps=20", "progress=false", "eval.plot=false",
        "hydra.callbacks.sweep.plots=false"]


def genbench(*args: str, env: dict[str, str] | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``genbench ARGS`` in a subprocess, single-threaded."""
    env = (env or dict(os.environ)) | {"OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    return subprocess.run([sys.executable, "-m", "genbench.cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT)


def genbench_popen(*args: str, env: dict[str, str]) -> subprocess.Popen:
    env = env | {"OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    return subprocess.Popen([sys.executable, "-m", "genbench.cli", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def ok_or_fail(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def results(sweep_dir: Path) -> dict[str, dict]:
    """Each job's results.json, keyed by its folder name."""
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/results.json")}


def metrics_by_seed(sweep_dir: Path) -> dict[int, dict]:
    return {r["seed"]: r["metrics"] for r in results(sweep_dir).values()}


class Slurm:
    """The single-node cluster of ``scripts/slurm-local``, and its client commands."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *command: str, check: bool = True) -> str:
        proc = subprocess.run(command, capture_output=True, text=True, env=self.env, timeout=60)
        if check:
            assert proc.returncode == 0, f"{command}: {proc.stderr}"
        return proc.stdout


def _slurm_missing() -> str | None:
    missing = [b for b in ("munged", "slurmctld", "slurmd", "sinfo", "scontrol", "sbatch")
               if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if missing:
        return f"SLURM is not installed (no {', '.join(missing)}): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "scripts/slurm-local runs SLURM's daemons as root (a container or CI machine)"
    return None


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A running single-node SLURM cluster (scripts/slurm-local), stopped at the end."""
    reason = _slurm_missing()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm")
    env = dict(os.environ) | {"GENBENCH_SLURM_DIR": str(state)}
    up = subprocess.run([str(SLURM_LOCAL), "up"], capture_output=True, text=True, env=env,
                        timeout=120)
    assert up.returncode == 0, up.stdout + up.stderr
    env |= {"SLURM_CONF": str(state / "slurm.conf"),
            "PATH": f"{state / 'bin'}{os.pathsep}{env['PATH']}"}
    try:
        yield Slurm(env)
    finally:
        down = subprocess.run([str(SLURM_LOCAL), "down"], capture_output=True, text=True,
                              env=env, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr


def scores(sweep_dir: Path) -> dict[int, dict]:
    """Each job's metrics by seed, without the timings and memory (they vary run to run)."""
    return {seed: {k: v for k, v in m.items()
                   if "seconds" not in k and not k.startswith("peak_")}
            for seed, m in metrics_by_seed(sweep_dir).items()}
