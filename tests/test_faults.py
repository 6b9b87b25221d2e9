"""The fault campaign (issue 13) as tests: each scenario asserts that nothing finished is lost
and that the message names the problem.

Fast scenarios run by default; those that start several Python processes (parallel encoder
fits, a killed joblib worker) are marked ``slow``. Permission scenarios run as ``nobody``
through ``setpriv`` (root ignores file modes) and are skipped where it is missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import torch

from genbench.codecs.cache import get_autoencoder
from genbench.codecs.mlp import MLPCodec
from genbench.core.config import ConfigError, check_name
from genbench.core.storage import STALE_TMP_SECONDS, atomic_json_dump
from genbench.report.leaderboard import Leaderboard
from genbench.report.write import main, write_report
from genbench.run.files import FAILED_RESULTS_FILE, RESULTS_FILE
from genbench.run.pipeline import _same_job, run
from genbench.sweep.cli import check_name_overrides
from tests.test_report import write_job

ROOT = Path(__file__).resolve().parents[1]
MOONS = {"name": "moons", "n_train": 400, "n_test": 100}
MLP = {"name": "mlp", "latent_dim": 2, "hidden": 16, "depth": 1, "steps": 40, "batch_size": 64}
HOSTILE = "<img src=x onerror=alert(1)>"


def tiny_job(cache: Path, **over) -> dict:
    cfg = {"dataset": dict(MOONS), "autoencoder": {"name": "identity"},
           "solver": {"name": "ddpm", "steps": 30, "batch_size": 64, "hidden": 16, "depth": 2,
                      "sample_steps": 10},
           "eval": {"plot": False}, "device": "cpu", "progress": False, "cache_dir": str(cache)}
    for key, value in over.items():
        group, _, field = key.partition("__")
        if field:
            cfg[group] = cfg[group] | {field: value}
        else:
            cfg[group] = value
    return cfg


def weights_hash(ae: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(ae.state_dict().items()):
        h.update(name.encode() + t.numpy().tobytes())
    return h.hexdigest()


def python(code: str, *args: str, user: bool = False, timeout: float = 300,
           **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (as ``nobody`` with ``user``: file modes apply)."""
    cmd = [sys.executable, "-c", textwrap.dedent(code), *args]
    if user:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
                          | env)


# --- the shared encoder is a function of its key --------------------------------------------

def test_same_key_gives_bit_identical_encoder_whatever_the_job_seed_or_order(tmp_path):
    hashes = []
    for job_seed, folder in ((0, "a"), (123, "b")):  # fresh caches: both fit
        torch.manual_seed(job_seed)
        before = torch.get_rng_state()
        ae, info = get_autoencoder(MLP, MOONS, tmp_path / folder)
        assert not info["cache_hit"]
        assert torch.equal(torch.get_rng_state(), before), "the fit consumed the job's RNG"
        hashes.append(weights_hash(ae))
    torch.manual_seed(7)  # another job, after the cache is filled: a hit, the same weights
    ae, info = get_autoencoder(MLP, MOONS, tmp_path / "a")
    assert info["cache_hit"] and weights_hash(ae) == hashes[0] == hashes[1]


def test_a_cache_entry_with_nan_weights_is_refitted(tmp_path, caplog):
    ae, info = get_autoencoder(MLP, MOONS, tmp_path)
    good = weights_hash(ae)
    state = torch.load(info["path"], weights_only=True)
    state["enc.0.weight"][0, 0] = float("nan")
    torch.save(state, info["path"])
    with caplog.at_level(logging.WARNING):
        ae, info = get_autoencoder(MLP, MOONS, tmp_path)
    assert not info["cache_hit"] and weights_hash(ae) == good
    assert "non-finite" in caplog.text and info["path"] in caplog.text


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_garbage_cache_file_is_refitted_with_a_clear_warning(tmp_path, caplog, damage):
    ae, info = get_autoencoder(MLP, MOONS, tmp_path)
    good, path = weights_hash(ae), Path(info["path"])
    data = path.read_bytes()
    path.write_bytes({"garbage": b"\x80\x04not a checkpoint" * 10,
                      "truncated": data[: len(data) // 2], "empty": b""}[damage])
    with caplog.at_level(logging.WARNING):
        ae, info = get_autoencoder(MLP, MOONS, tmp_path)
    assert not info["cache_hit"] and weights_hash(ae) == good
    assert str(path) in caplog.text and "refitting" in caplog.text
    assert "weights_only" not in caplog.text  # torch's advice never leaks


def test_a_non_finite_fit_is_not_cached(tmp_path, monkeypatch):
    def explode(self, x):
        for p in self.parameters():
            p.data.fill_(float("nan"))
        return float("nan")

    monkeypatch.setattr(MLPCodec, "_train_mlp", explode)
    with pytest.raises(FloatingPointError, match="non-finite weights.*not cached"):
        get_autoencoder(MLP, MOONS, tmp_path)
    assert not list((tmp_path / "autoencoders").glob("*.pt"))


def test_too_few_points_for_an_encoder_fail_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset.n_train=1 .*at least 2 points"):
        get_autoencoder(MLP, MOONS | {"n_train": 1}, tmp_path)
    result = run(tiny_job(tmp_path, autoencoder=MLP, dataset__n_train=1), tmp_path / "job")
    assert result["status"] == "failed" and "dataset.n_train=1" in result["error"]
    assert not (tmp_path / "autoencoders").exists()  # nothing was fitted


# --- files: atomic, umask, torn temporaries --------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = atomic_json_dump({"a": 1}, tmp_path / "x.json")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_kill_9_mid_write_keeps_the_old_file_and_the_next_write_cleans_up(tmp_path):
    target = tmp_path / RESULTS_FILE
    atomic_json_dump({"status": "ok", "value": 1}, target)
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from genbench.core.storage import atomic_write
        def slow(fh):
            fh.write(b'{{"status": "ok", "val')
            fh.flush()
            print("writing", flush=True)
            time.sleep(60)
        atomic_write({str(target)!r}, slow)
        """)], stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert json.loads(target.read_text()) == {"status": "ok", "value": 1}  # intact
    (torn,) = tmp_path.glob(".*.tmp")
    fresh = tmp_path / ".other.json.x.tmp"  # a write in flight elsewhere: kept
    fresh.write_text("")
    old = time.time() - STALE_TMP_SECONDS - 60
    os.utime(torn, (old, old))
    atomic_json_dump({"status": "ok", "value": 2}, target)
    assert not torn.exists() and fresh.exists()
    assert json.loads(target.read_text())["value"] == 2


# --- a finished result is never replaced by a failure ----------------------------------------

def test_a_failing_rerun_never_replaces_a_finished_result(tmp_path):
    out = tmp_path / "job"
    ok = run(tiny_job(tmp_path), out)
    assert ok["status"] == "ok", ok.get("traceback")
    saved = (out / RESULTS_FILE).read_text()
    failed = run(tiny_job(tmp_path, resume=False, solver__lr=1e12), out)
    assert failed["status"] == "failed" and failed["error_type"] == "DivergenceError"
    assert (out / RESULTS_FILE).read_text() == saved  # the finished result, byte for byte
    beside = json.loads((out / FAILED_RESULTS_FILE).read_text())
    assert beside["error_type"] == "DivergenceError" and beside["kept_result"].endswith(
        RESULTS_FILE)
    board = Leaderboard.load(tmp_path)
    assert board.counts() == "1 jobs: 1 ok, 0 failed" and len(board.rerun_failures) == 1
    md = write_report(board, plots=False)["markdown"].read_text()
    assert "Re-runs that failed (the finished result is kept)" in md and "DivergenceError" in md
    # a later successful re-run removes the stale failure
    assert run(tiny_job(tmp_path, resume=False), out)["status"] == "ok"
    assert not (out / FAILED_RESULTS_FILE).exists()


@pytest.mark.parametrize("name", ["../..", "../../other-run", "a/b", ".hidden", "a\\b", ""])
def test_names_used_in_paths_are_checked(tmp_path, name):
    with pytest.raises(ConfigError, match=r"dataset.name=.*cannot name a folder.*letters"):
        check_name("dataset.name", name)
    assert "solver.name" in check_name_overrides([f"solver.name=ddpm,{name}"])
    result = run(tiny_job(tmp_path, solver__name=name or "x/"), tmp_path / "job")
    assert result["status"] == "failed" and "cannot name a folder" in result["error"]


def test_the_cli_refuses_a_path_in_a_name_before_hydra_makes_a_folder(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "genbench", "dataset.name=../..",
                           f"hydra.run.dir={tmp_path}/run/${{dataset.name}}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env=os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert proc.returncode != 0 and "dataset.name='../..' cannot name a folder" in proc.stderr
    assert not list(tmp_path.iterdir())


# --- the report and resume read anything -----------------------------------------------------

@pytest.fixture
def damaged_sweep(tmp_path) -> Path:
    write_job(tmp_path, "a", "moons", 0, ratio=1.5)
    write_job(tmp_path, "a", "moons", 1, status="failed")
    for i, text in enumerate(['{"status": "ok", "metr', "[]",
                              '{"status": "ok", "metrics": [1, 2], "solver": "a"}',
                              '{"status": "ok", "config": "nope", "seed": "x"}']):
        (tmp_path / f"bad{i}").mkdir()
        (tmp_path / f"bad{i}" / RESULTS_FILE).write_text(text)
    return tmp_path


def test_unreadable_results_are_counted_and_listed_never_a_traceback(damaged_sweep, capsys):
    board = Leaderboard.load(damaged_sweep)
    assert board.counts() == "6 jobs: 1 ok, 1 failed, 4 unreadable"
    assert main([str(damaged_sweep), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "6 jobs: 1 ok, 1 failed, 4 unreadable" in out and "Traceback" not in out
    html = (damaged_sweep / "report" / "report.html").read_text()
    assert "Unreadable results" in html and "bad0" in html
    assert "field &#x27;metrics&#x27; is list, expected dict" in html


def test_resume_treats_an_ill_typed_result_as_no_result(tmp_path):
    assert not _same_job([], {"seed": 0}) and not _same_job("x", {"seed": 0})
    out = tmp_path / "job"
    out.mkdir()
    (out / RESULTS_FILE).write_text('{"status": "ok", "config": []}')
    result = run(tiny_job(tmp_path, solver__name="nope"), out)
    assert result["error_type"] == "KeyError" or "nope" in result["error"]
    assert "AttributeError" not in result["traceback"]


def test_a_truncated_samples_file_drops_only_its_panel(tmp_path, caplog):
    from genbench.report.figures import draw_figures

    write_job(tmp_path, "a", "moons", 0)
    torn = write_job(tmp_path, "b", "moons", 0) / "samples.npz"
    torn.write_bytes(torn.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        figures = draw_figures(Leaderboard.load(tmp_path), tmp_path / "report")
    assert "generated vs target samples" in figures
    assert str(torn) in caplog.text and "panel" in caplog.text


def test_every_value_in_the_html_is_escaped(tmp_path):
    folder = write_job(tmp_path, HOSTILE, HOSTILE, 0)
    failed = write_job(tmp_path, "b", "moons", 1, status="failed")
    data = json.loads((failed / RESULTS_FILE).read_text())
    data |= {"error": HOSTILE, "traceback": HOSTILE, "error_type": HOSTILE}
    data["config"]["solver"]["lr"] = HOSTILE
    (failed / RESULTS_FILE).write_text(json.dumps(data))
    (folder.parent / "bad").mkdir()
    (folder.parent / "bad" / RESULTS_FILE).write_text(json.dumps({"status": HOSTILE, "seed": {}}))
    html = write_report(tmp_path, plots=False)["html"].read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_failed_jobs_settings_do_not_leak_into_labels_and_duplicates_count_once(tmp_path):
    for seed in (0, 1):
        write_job(tmp_path, "a", "moons", seed)
    stray = write_job(tmp_path, "a", "moons", 2, status="failed")
    data = json.loads((stray / RESULTS_FILE).read_text())
    data["config"]["solver"]["stepz"] = None  # a misspelt key, failed in validation
    (stray / RESULTS_FILE).write_text(json.dumps(data))
    raw = write_job(tmp_path, "a", "moons", 3, status="failed")  # failed before its config
    data = json.loads((raw / RESULTS_FILE).read_text())
    hydra_config = data.pop("config") | {"dataset": {"name": "moons", "n_test": 500}}
    (raw / ".hydra").mkdir()
    (raw / ".hydra" / "config.yaml").write_text(json.dumps(hydra_config))  # YAML reads JSON
    (raw / RESULTS_FILE).write_text(json.dumps(data))
    twin = tmp_path / "twin"
    shutil.copytree(tmp_path / "solver=a,dataset=moons,seed=0,steps=20", twin)
    board = Leaderboard.load(tmp_path)
    assert [j.variant for j in board.jobs if j.ok] == ["", ""]
    assert sorted(j.variant for j in board.failed) == ["dataset.n_test=500", "stepz=null"]
    (entry,) = [e for e in board.entries if e.ok]
    assert len(entry.ok) == 2 and board.duplicates == [(twin, tmp_path / "solver=a,dataset="
                                                       "moons,seed=0,steps=20")]
    assert "duplicate runs counted once" in board.counts()


# --- bad values fail at validation, naming the key -------------------------------------------

@pytest.mark.parametrize(("over", "names"), [
    ({"solver__lrr": 0.1}, ["'lrr'", "allowed keys", "lr"]),                 # misspelt key
    ({"solver__steps": "many"}, ["'steps'", "many"]),                        # wrong type
    ({"solver__name": "nope"}, ["nope", "registered solvers", "ddpm"]),      # unknown solver
    ({"dataset": {"name": "nope"}}, ["nope", "registered datasets", "moons"]),  # unknown data
    ({"solver__lr": -1.0}, ["lr must be positive", "-1.0"]),
    ({"solver__lr": float("nan")}, ["lr=nan", "not a finite number"]),
    ({"dataset": {"name": "gmm", "radius": 1e30}}, ["radius must lie in [0, 1e+06]", "1e+30"]),
    ({"dataset": {"name": "manifold", "scale": float("inf")}}, ["scale", "finite"]),
])
def test_bad_values_fail_before_any_work_naming_key_value_and_what_is_allowed(
        tmp_path, over, names):
    result = run(tiny_job(tmp_path, **over), tmp_path / "job")
    assert result["status"] == "failed"
    for name in names:
        assert name in result["error"], (name, result["error"])
    assert "metrics" not in result and not (tmp_path / "autoencoders").exists()
    assert not (tmp_path / "job" / "samples.npz").exists()


def test_a_bad_launcher_names_the_options(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "genbench", "launcher=nope"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env=os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert proc.returncode != 0
    assert "launcher/nope" in proc.stderr and "joblib" in proc.stderr  # the options listed


# --- read-only folders, as a user that file modes apply to -----------------------------------

READ_ONLY = """
    import json, logging, os, sys, torch
    from pathlib import Path
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from genbench.codecs.cache import get_autoencoder
    from genbench.eval.floors import cached_floor
    from genbench.run.pipeline import run
    root = Path(sys.argv[1])
    mlp = json.loads(sys.argv[2]); moons = json.loads(sys.argv[3])
    out = {{}}
    _, info = get_autoencoder(mlp, moons, root / "empty-ro")           # nothing cached, no write
    out["fresh"] = [info["cache_hit"], info.get("cached")]
    _, info = get_autoencoder(mlp, moons, root / "filled-ro")          # a shared read-only hit
    out["hit"] = info["cache_hit"]
    t = torch.zeros(4, 2)
    out["floor"] = cached_floor("w2", lambda: {{"w2": 1.5}}, t, t, {{}}, root / "empty-ro")
    job = {job}
    job["cache_dir"] = str(root / "empty-ro")
    res = run(job, root / "run-ro")                                     # read-only run folder
    out["run"] = [res["status"], res.get("saved"), res.get("save_error", "")]
    from genbench.report.write import main
    out["report"] = main([str(root / "sweep-ro"), "--no-plots"])      # read-only sweep folder
    print("RESULT" + json.dumps(out))
"""


def test_read_only_cache_and_run_folders_warn_and_run_uncached(tmp_path):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is missing: cannot drop CAP_DAC_OVERRIDE")
    root = Path(tempfile.mkdtemp(prefix="genbench-ro-", dir="/tmp"))  # nobody must traverse
    try:
        os.chmod(root, 0o755)
        get_autoencoder(MLP, MOONS, root / "filled-ro")  # filled by root, then frozen
        write_job(root / "sweep-ro", "a", "moons", 0)
        for name in ("empty-ro", "filled-ro", "filled-ro/autoencoders", "run-ro", "sweep-ro"):
            (root / name).mkdir(exist_ok=True)
            os.chmod(root / name, 0o555)
        code = READ_ONLY.format(job=repr(tiny_job(root)))
        proc = python(code, str(root), json.dumps(MLP), json.dumps(MOONS), user=True,
                      HOME=str(root), MPLCONFIGDIR=str(root))
        if "Operation not permitted" in proc.stderr and "setpriv" in proc.stderr:
            pytest.skip(f"setpriv cannot switch user here: {proc.stderr.strip()}")
        line = next((s for s in proc.stdout.splitlines() if s.startswith("RESULT")), None)
        assert line is not None, proc.stderr[-3000:]
        out = json.loads(line.removeprefix("RESULT"))
        assert out["fresh"] == [False, False] and out["hit"] is True
        assert out["floor"] == {"w2": 1.5}
        status, saved, error = out["run"]
        assert saved is False and "run-ro/results.json" in error and "ermission" in error
        assert "not writable" in proc.stderr and "running uncached" in proc.stderr
        assert "floor cache not writable" in proc.stderr and "Traceback" not in proc.stderr
        assert out["report"] == 2 and "genbench-report: " in proc.stderr
        assert "Permission denied" in proc.stderr and "sweep-ro/report" in proc.stderr
        sweep = python("import sys; sys.argv[0] = 'genbench'; from genbench.sweep.cli import "
                       "main; main()", "-m", f"hydra.sweep.dir={root}/sweep-ro/new", user=True,
                       HOME=str(root))
        assert sweep.returncode == 1 and "Traceback" not in sweep.stderr
        assert f"cannot write into {root}/sweep-ro (hydra.sweep.dir=" in sweep.stderr
    finally:
        for folder in root.rglob("*"):
            if folder.is_dir():
                os.chmod(folder, 0o755)
        shutil.rmtree(root, ignore_errors=True)


# --- parallel jobs ---------------------------------------------------------------------------

FIT = """
    import hashlib, json, sys, torch
    from genbench.codecs.cache import get_autoencoder
    torch.manual_seed(int(sys.argv[2]))  # each job its own seed: the key ignores it
    ae, info = get_autoencoder(json.loads(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[1])
    h = hashlib.sha256()
    for name, t in sorted(ae.state_dict().items()):
        h.update(name.encode() + t.numpy().tobytes())
    print("RESULT" + json.dumps([info["cache_hit"], h.hexdigest()]))
"""


@pytest.mark.slow  # two interpreters importing torch
def test_parallel_jobs_fit_the_encoder_once_with_identical_weights(tmp_path):
    mlp = MLP | {"steps": 1500}  # a fit of seconds: the second job arrives while it runs
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(FIT), str(tmp_path),
                               str(seed), json.dumps(mlp), json.dumps(MOONS)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT, env=env) for seed in (0, 1)]
    outs = [p.communicate(timeout=600) for p in procs]
    found = []
    for out, err in outs:
        line = next((s for s in out.splitlines() if s.startswith("RESULT")), None)
        assert line is not None, err[-3000:]
        found.append(json.loads(line.removeprefix("RESULT")))
    assert sorted(hit for hit, _ in found) == [False, True]  # one fit, one wait-then-load
    assert found[0][1] == found[1][1]
    ae, _ = get_autoencoder(mlp, MOONS, tmp_path / "here")  # and the same in this process
    assert weights_hash(ae) == found[0][1]


SWEEP = ["experiment=smoke", "dataset.n_train=500", "dataset.n_test=200", "solver.sample_steps=20",
         "progress=false", "eval.plot=false", "hydra.callbacks.sweep.plots=false"]


def _kill_worker_of(markers: Path, override: str, not_pid: int | None, deadline: float) -> int:
    """Kill -9 the joblib worker that runs the job with ``override``; return its pid."""
    while time.time() < deadline:
        for note in markers.glob("*.json"):
            try:
                info = json.loads(note.read_text())
            except (OSError, ValueError):
                continue
            if override in info["overrides"] and info["pid"] != not_pid:
                time.sleep(1.0)  # let it get into its work
                os.kill(info["pid"], signal.SIGKILL)
                return info["pid"]
        time.sleep(0.2)
    raise AssertionError(f"no worker ran {override}")


@pytest.mark.slow  # joblib workers importing torch, twice after each kill
def test_a_killed_joblib_worker_is_a_failed_job_not_a_failed_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen(
        [sys.executable, "-m", "genbench", "-m", *SWEEP, "launcher=joblib",
         "hydra.launcher.n_jobs=2", "solver.steps=40,60,500000", f"hydra.sweep.dir={sweep}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.time() + 500
        first = _kill_worker_of(sweep / ".genbench-running", "solver.steps=500000", None,
                                deadline)
        _kill_worker_of(sweep / ".genbench-running", "solver.steps=500000", first, deadline)
        out, err = proc.communicate(timeout=500)
    finally:
        proc.kill()
    found = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/results.json")}
    assert len(found) == 3, (out[-2000:], err[-3000:])
    (name,) = [n for n in found if "solver.steps=500000" in n]
    dead = found.pop(name)
    assert dead["status"] == "failed" and dead["error_type"] == "WorkerDied"
    assert "SIGKILL" in dead["error"] and "out-of-memory" in dead["error"]
    assert all(r["status"] == "ok" for r in found.values())  # the others finished
    assert proc.returncode == 1
    # one summary line (loky's resource tracker may still warn after it, at exit)
    assert [line for line in err.splitlines() if line.startswith("genbench: 1 of 3 jobs failed")]
    board = (sweep / "report" / "leaderboard.md").read_text()
    assert "3 jobs: 2 ok, 1 failed" in board and "WorkerDied" in board
    assert not (sweep / ".genbench-running").exists()
