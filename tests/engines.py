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
    return subprocess.run([sys.executable, "-m", "genbench.sweep.cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT)


def genbench_popen(*args: str, env: dict[str, str]) -> subprocess.Popen:
    env = env | {"OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    return subprocess.Popen([sys.executable, "-m", "genbench.sweep.cli", *args], env=env, cwd=ROOT,
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


def processes_with(marker: str) -> list[str]:
    """Command lines of the processes whose command line or environment holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if proc.name.isdigit() and int(proc.name) != os.getpid() and (
                marker.encode() in cmdline or marker.encode() in environ):
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


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
        assert not processes_with(str(state)), processes_with(str(state))  # nothing left


def scores(sweep_dir: Path) -> dict[int, dict]:
    """Each job's metrics by seed, without the timings and memory (they vary run to run)."""
    return {seed: {k: v for k, v in m.items()
                   if "seconds" not in k and not k.startswith("peak_")}
            for seed, m in metrics_by_seed(sweep_dir).items()}


def _ray_missing() -> str | None:
    import importlib.util

    for module, what in (("ray", "Ray"), ("hydra_plugins.hydra_ray_launcher", "its plugin")):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{what} is not installed: pip install 'genbench[ray]'"
    if shutil.which("ray") is None and not Path(sys.executable).with_name("ray").exists():
        return "the `ray` command is not installed: pip install 'genbench[ray]'"
    return None


class RayCluster:
    """A local Ray cluster (``ray start --head``) and the environment that reaches it."""

    def __init__(self, env: dict[str, str], marker: str) -> None:
        self.env, self.marker = env, marker

    def job_workers(self) -> list[int]:
        """Process ids of this cluster's workers running a job (title ``ray::_run_job``)."""
        pids = []
        for proc in Path("/proc").iterdir():
            try:
                title = (proc / "cmdline").read_bytes()
                environ = (proc / "environ").read_bytes()
            except OSError:
                continue
            if title.startswith(b"ray::_run_job") and self.marker.encode() in environ:
                pids.append(int(proc.name))
        return pids


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    """``ray start --head --num-cpus=2`` for the session, ``ray stop`` at the end."""
    reason = _ray_missing()
    if reason:
        pytest.skip(reason)
    ray = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    marker = str(tmp_path_factory.mktemp("ray"))
    # Workers inherit this environment (the test's cache folder), and the marker tells
    # this cluster's processes apart from any other's.
    # RAY_DEDUP_LOGS=0: Ray folds identical log lines of several workers into one
    # ("[repeated 5x across cluster]"); the tests count each job's line.
    env = dict(os.environ) | {"GENBENCH_TEST_RAY": marker, "OMP_NUM_THREADS": "1",
                              "RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}
    start = subprocess.run([ray, "start", "--head", "--num-cpus=2", "--include-dashboard=false",
                            "--disable-usage-stats"], capture_output=True, text=True, env=env,
                           timeout=180)
    assert start.returncode == 0, start.stdout[-3000:] + start.stderr[-3000:]
    try:
        yield RayCluster(env, marker)
    finally:
        stop = subprocess.run([ray, "stop"], capture_output=True, text=True, env=env,
                              timeout=180)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert not processes_with(marker), processes_with(marker)  # nothing left


SIX_SEEDS = "seed=0,1,2,3,4,5"


@pytest.fixture(scope="session")
def local_six(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six smoke jobs through Hydra's basic launcher (in one process): the reference numbers."""
    sweep_dir = tmp_path_factory.mktemp("local-six")
    ok_or_fail(genbench("-m", *TINY, SIX_SEEDS, f"hydra.sweep.dir={sweep_dir}"))
    return sweep_dir
