"""The command line: `genbench --version`, `python -m genbench`, the job name `genbench`
(help header, log file, SLURM job name), and the README's compose-API example, run as is."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

import genbench
from genbench.sweep.schemas import register_schemas

register_schemas()
README = Path(__file__).resolve().parents[1] / "README.md"
ENV = os.environ | {"OMP_NUM_THREADS": "1"}
FAST = ["experiment=smoke", "dataset.n_train=300", "dataset.n_test=100", "solver.steps=20",
        "solver.sample_steps=5", "eval.plot=false", "progress=false"]


def _python(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ENV,
                          cwd=cwd, timeout=300)


def test_version_from_both_entry_points():
    for args in (["-m", "genbench", "--version"], ["-m", "genbench.sweep.eval_cli",
                                                    "--version"]):
        proc = _python(*args)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"genbench {genbench.__version__}"


def test_help_names_the_app_genbench():
    proc = _python("-m", "genbench", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("genbench is powered by Hydra")
    assert "cli is powered" not in proc.stdout


def test_job_name_sets_the_log_file_and_the_slurm_job_name():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    with initialize_config_module(config_module="genbench_configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["launcher=slurm"],
                      return_hydra_config=True)
    assert cfg.hydra.job.name == "genbench"
    assert cfg.hydra.launcher.name == "genbench"
    log_file = OmegaConf.to_container(cfg.hydra.job_logging.handlers.file)["filename"]
    assert log_file.endswith("/${hydra.job.name}.log")  # the run test checks the file itself


def test_python_m_genbench_runs_a_job(tmp_path):
    proc = _python("-m", "genbench", *FAST, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "W2 data" in proc.stdout
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "ok"
    assert (tmp_path / "genbench.log").is_file() and (tmp_path / "model.pt").is_file()
    assert not (tmp_path / "cli.log").exists()


def test_readme_compose_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    start = text.index("### Hydra's compose API")
    (code,) = re.findall(r"```python\n(.*?)```", text[start:], flags=re.S)[:1]
    assert "initialize_config_module" in code and "genbench_configs" in code
    # Smaller sizes than the smoke experiment keep the test short; the code is the README's.
    fast = code.replace('"experiment=smoke"]', ", ".join(f'"{o}"' for o in FAST) + "]")
    assert fast != code
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(fast, str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["result"]["status"] == "ok", namespace["result"].get("traceback")
    assert namespace["result"]["solver"] == "cfm"
    assert (tmp_path / "outputs" / "compose-example" / "results.json").is_file()
