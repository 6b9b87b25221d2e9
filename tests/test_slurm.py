"""Sweeps through a real SLURM scheduler: ``genbench -m launcher=slurm`` on a one-node cluster.

The cluster is ``scripts/slurm-local`` (munged, slurmctld, slurmd on this machine), started
once for the session by the ``slurm_cluster`` fixture (tests/engines.py); the tests skip
with the reason where SLURM is not installed (``apt-get install slurm-wlm munge``) or not
root. The jobs are tiny
smoke runs (1 CPU, 1 GB each). About 4-5 min in all on a loaded 2-core machine.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.engines import SIX_SEEDS, TINY, genbench, genbench_popen, ok_or_fail, results, scores

pytestmark = pytest.mark.slurm

# The preset for a real cluster asks for a GPU, 4 CPUs and 16 GB per job: this node has none
# of it, so the jobs ask for what a smoke run needs.
ON_THIS_NODE = ["launcher=slurm", "hydra.launcher.gpus_per_node=0",
                "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
                "hydra.launcher.timeout_min=10", "hydra.launcher.array_parallelism=2"]


def sweep_args(sweep_dir: Path, *overrides: str) -> list[str]:
    return ["-m", *TINY, *ON_THIS_NODE, *overrides, f"hydra.sweep.dir={sweep_dir}"]


def array_id(sweep_dir: Path, timeout: float = 120) -> str:
    """The id of the job array the sweep submitted (submitit's folder .submitit/<id>/)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = [p.name for p in (sweep_dir / ".submitit").glob("*") if p.name.isdigit()]
        if ids:
            return max(ids, key=int)
        time.sleep(0.5)
    raise AssertionError(f"no job array submitted under {sweep_dir}/.submitit")


def wait_state(slurm, job: str, wanted: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if slurm("squeue", "-h", "-j", job, "-o", "%T", check=False).strip() == wanted:
            return
        time.sleep(0.5)
    raise AssertionError(f"job {job} never {wanted}")


def sacct_record(slurm, array: str, wanted: list[str], timeout: float = 120) -> str:
    """The accounting record of ``array`` once it holds every ``wanted`` line (or at the
    timeout): a finished task can stay RUNNING there while slurmd completes it."""
    deadline = time.monotonic() + timeout
    while True:
        record = slurm("sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j", array)
        if all(w in record for w in wanted) or time.monotonic() > deadline:
            return record
        time.sleep(1)


@pytest.fixture(scope="module")
def sweep(slurm_cluster, tmp_path_factory):
    """Six seeds through the scheduler; squeue polled while they run."""
    sweep_dir = tmp_path_factory.mktemp("slurm-sweep")
    proc = genbench_popen(*sweep_args(sweep_dir, SIX_SEEDS), env=slurm_cluster.env)
    seen: set[str] = set()
    while proc.poll() is None:
        seen |= {line.strip() for line in slurm_cluster("squeue", "-h", "-o", "%i %T",
                                                         check=False).splitlines()}
        time.sleep(0.5)
    out = proc.stdout.read()
    assert proc.returncode == 0, out[-4000:]
    return sweep_dir, out, seen


def test_a_sweep_runs_as_a_job_array(slurm_cluster, sweep):
    sweep_dir, out, seen = sweep
    array = array_id(sweep_dir)
    assert "Submitit 'slurm' sweep output dir" in out
    assert any(line.startswith(f"{array}_") for line in seen), seen  # queued or running
    # the scheduler's record of the finished tasks (see scripts/slurm-local on sacct); a task
    # whose results are written can still be RUNNING there while slurmd finishes it, longer
    # on a loaded machine, so the record is polled
    done = [f"{array}_{task}|COMPLETED|" for task in range(6)]
    record = sacct_record(slurm_cluster, array, done)
    for d in done:
        assert d in record, record
    found = results(sweep_dir)
    assert len(found) == 6 and {r["status"] for r in found.values()} == {"ok"}
    assert sorted(r["seed"] for r in found.values()) == list(range(6))
    assert "sweep done: 6 jobs: 6 ok, 0 failed" in out
    assert (sweep_dir / "report" / "leaderboard.csv").exists()


def test_a_second_submission_skips_finished_jobs(slurm_cluster, sweep):
    sweep_dir, _, _ = sweep
    before = results(sweep_dir)
    first = array_id(sweep_dir)
    ok_or_fail(genbench(*sweep_args(sweep_dir, SIX_SEEDS), env=slurm_cluster.env))
    assert results(sweep_dir) == before  # same files, same finish times
    second = array_id(sweep_dir)
    assert int(second) > int(first)  # submitted again, as a new array
    logs = [p.read_text() for p in (sweep_dir / ".submitit").glob(f"{second}_*/*_log.*")]
    assert sum("result exists, skipping" in log for log in logs) == 6, logs


def test_jobs_ended_by_scancel_or_their_time_limit_are_recorded_as_failed(slurm_cluster,
                                                                          tmp_path):
    """Job 0 finishes; job 1 is cancelled; job 2 gets a 10 s limit while it runs."""
    env = slurm_cluster.env
    proc = genbench_popen(*sweep_args(tmp_path, "solver.steps=50,100000,100001",
                                      "hydra.launcher.array_parallelism=3"), env=env)
    try:
        array = array_id(tmp_path)
        wait_state(slurm_cluster, f"{array}_1", "RUNNING")
        slurm_cluster("scancel", f"{array}_1")
        wait_state(slurm_cluster, f"{array}_2", "RUNNING")
        # past its start-up: before submitit installs its handler, the timeout warning
        # signal (USR2) would kill the job outright (state FAILED instead of a timeout)
        deadline = time.monotonic() + 180
        while not list(tmp_path.glob("*solver.steps=100001*/.hydra/config.yaml")):
            assert time.monotonic() < deadline, "job 2 never started"
            time.sleep(0.5)
        time.sleep(1)
        slurm_cluster("scontrol", "update", f"JobId={array}_2", "TimeLimit=0:10")
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out[-4000:]  # two jobs failed: the sweep says so
    assert "genbench: 2 of 3 jobs failed" in out
    by_steps = {r["config"]["solver"]["steps"]: r for r in results(tmp_path).values()}
    assert by_steps.keys() == {50, 100000, 100001}
    assert by_steps[50]["status"] == "ok"
    cancelled, timed_out = by_steps[100000], by_steps[100001]
    assert cancelled["status"] == "failed" and cancelled["error_type"] == "SlurmCancelled"
    assert cancelled["slurm_job_id"] == f"{array}_1"
    assert timed_out["status"] == "failed"
    # SLURM kills it (TIMEOUT), or submitit's timeout signal ends it first (no requeue)
    assert (timed_out.get("error_type") == "SlurmTimeout"
            or "timed-out" in timed_out.get("error", "")), timed_out
    assert "sweep done: 3 jobs: 1 ok, 2 failed" in out
    board = (tmp_path / "report" / "leaderboard.md").read_text()
    assert "## Failed jobs" in board and "SlurmCancelled" in board
    wanted = [f"{array}_1|CANCELLED|", f"{array}_0|COMPLETED|"]
    record = sacct_record(slurm_cluster, array, wanted)
    assert all(w in record for w in wanted), record


def test_same_numbers_as_the_local_launcher(sweep, local_six):
    """The array's six jobs against Hydra's basic launcher, in one process: identical floats."""
    sweep_dir, _, _ = sweep
    assert len(scores(local_six)) == 6
    assert scores(sweep_dir) == scores(local_six)
