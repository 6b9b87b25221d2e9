"""Sweeps through a real Ray cluster: ``genbench -m launcher=ray`` on this machine.

The ``ray_cluster`` fixture (tests/engines.py) runs ``ray start --head --num-cpus=2`` once for
the session and ``ray stop`` at the end; the tests skip with the reason where
``genbench[ray]`` is not installed. The jobs are tiny smoke runs on CPU (``num_gpus=0``).
About 4-5 min in all on a loaded 2-core machine.
"""

from __future__ import annotations

import os
import re
import signal
import time
from datetime import datetime, timezone

import pytest

from tests.engines import SIX_SEEDS, TINY, genbench, genbench_popen, ok_or_fail, results, scores

pytestmark = pytest.mark.ray
ON_THIS_MACHINE = ["launcher=ray", "hydra.launcher.ray.remote.num_gpus=0"]


def ray_args(sweep_dir, *overrides: str) -> list[str]:
    return ["-m", *TINY, *ON_THIS_MACHINE, *overrides, f"hydra.sweep.dir={sweep_dir}"]


@pytest.fixture(scope="module")
def six(ray_cluster, tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("ray-six")
    proc = ok_or_fail(genbench(*ray_args(sweep_dir, SIX_SEEDS), env=ray_cluster.env))
    return sweep_dir, proc.stdout + proc.stderr


def test_a_sweep_runs_on_the_cluster(six):
    sweep_dir, out = six
    assert "Ray Launcher is launching 6 jobs" in out
    assert "(_run_job pid=" in out  # the jobs' output, relayed from Ray's workers
    found = results(sweep_dir)
    assert len(found) == 6 and {r["status"] for r in found.values()} == {"ok"}
    assert "sweep done: 6 jobs: 6 ok, 0 failed" in out
    assert (sweep_dir / "report" / "leaderboard.csv").exists()


def test_same_numbers_as_the_local_launcher(six, local_six):
    sweep_dir, _ = six
    assert len(scores(local_six)) == 6
    assert scores(sweep_dir) == scores(local_six)


def test_a_second_run_skips_finished_jobs(ray_cluster, six):
    sweep_dir, _ = six
    before = results(sweep_dir)
    proc = ok_or_fail(genbench(*ray_args(sweep_dir, SIX_SEEDS), env=ray_cluster.env))
    assert results(sweep_dir) == before  # same files, same finish times
    assert skipped_jobs(proc.stdout + proc.stderr) == {f"ddpm-moons-s{s}" for s in range(6)}


def skipped_jobs(log: str) -> set[str]:
    """The jobs that said "skipped NAME (result exists)" (Ray may echo a worker's line more
    than once: the set counts each job once)."""
    return set(re.findall(r"skipped (\S+) \(result exists\)", log))


def test_in_process_mode_starts_its_own_instance(ray_cluster, tmp_path):
    args = ray_args(tmp_path, "seed=0,1", "hydra.launcher.ray.init.address=local",
                    "+hydra.launcher.ray.init.num_cpus=1")
    proc = ok_or_fail(genbench(*args, env=ray_cluster.env))
    assert "Started a local Ray instance" in proc.stdout + proc.stderr
    found = results(tmp_path)
    assert len(found) == 2 and {r["status"] for r in found.values()} == {"ok"}


def test_a_job_that_raises_fails_alone(ray_cluster, tmp_path):
    proc = genbench(*ray_args(tmp_path, "solver.lr=0.002,1e12"), env=ray_cluster.env)
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-4000:]  # a job failed
    assert "genbench: 1 of 2 jobs failed" in proc.stderr
    by_lr = {r["config"]["solver"]["lr"]: r for r in results(tmp_path).values()}
    assert by_lr[0.002]["status"] == "ok"
    assert by_lr[1e12]["status"] == "failed" and by_lr[1e12]["error_type"] == "DivergenceError"
    assert "sweep done: 2 jobs: 1 ok, 1 failed" in proc.stdout
    assert "## Failed jobs" in (tmp_path / "report" / "leaderboard.md").read_text()


def test_a_killed_worker_is_rerun_and_the_others_finish(ray_cluster, tmp_path):
    proc = genbench_popen(*ray_args(tmp_path, "seed=0,1", "solver.steps=3000"),
                          env=ray_cluster.env)
    try:
        deadline = time.monotonic() + 180
        # both jobs past their start: Hydra wrote their folders, genbench stamped "started"
        while (len(workers := ray_cluster.job_workers()) < 2
               or len(list(tmp_path.glob("*/.hydra/config.yaml"))) < 2):
            assert time.monotonic() < deadline and proc.poll() is None, "no two jobs running"
            time.sleep(0.2)
        time.sleep(1)  # each job trains for ~10 s
        killed_at = datetime.now(timezone.utc).isoformat()
        os.kill(workers[0], signal.SIGKILL)
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-4000:]
    found = results(tmp_path)
    assert len(found) == 2 and {r["status"] for r in found.values()} == {"ok"}, found
    # the killed job ran again from the start (max_retries); the other ran once
    assert sorted(r["started"] > killed_at for r in found.values()) == [False, True]
