"""Any registered solver from the command line, and solver-specific keys in a sweep.

A fake installed distribution (a dist-info folder on PYTHONPATH, as in test_registry) adds
the plugin ``echo``: ``genbench solver=echo`` must compose from its Config dataclass alone
(no YAML anywhere) and run; ``solver=glob(*)`` must include it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genbench.core.solver import get_solver_class
from solvers.ddpm import DDPMConfig
from tests.test_registry import _install_fake_distribution

TINY = ["experiment=smoke", "dataset.n_train=500", "dataset.n_test=200", "solver.steps=5",
        "progress=false", "eval.plot=false", "eval.density_max_n=50",
        "eval.tv_monte_carlo=false"]
ECHO_PLUGIN = """
    from dataclasses import dataclass

    from solvers.ddpm import DDPM, DDPMConfig


    @dataclass
    class EchoConfig(DDPMConfig):
        echo_level: int = 7  # a key only this plugin has


    class EchoDDPM(DDPM):
        '''A third-party solver: ddpm under another name, with one more key.'''

        Config = EchoConfig
"""


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plugin")
    _install_fake_distribution(root, "[genbench.solvers]\necho = fake_echo_plugin:EchoDDPM\n",
                               {"fake_echo_plugin": ECHO_PLUGIN})
    return root


def genbench(plugin_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(plugin_dir)}
    return subprocess.run([sys.executable, "-m", "genbench.sweep.cli", *args],
                          capture_output=True, text=True, env=env, timeout=400)


def test_plugin_solver_runs_from_the_cli_with_its_dataclass_defaults(plugin_dir, tmp_path):
    proc = genbench(plugin_dir, "solver=echo", "solver.sample_steps=20", *TINY,
                    f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["status"] == "ok" and result["solver"] == "echo"
    solver = result["config"]["solver"]
    assert solver["echo_level"] == 7, "the default comes from the plugin's Config"
    assert solver["timesteps"] == DDPMConfig.timesteps and solver["sample_steps"] == 20
    # its keys are typed at composition like the built-ins'
    bad = genbench(plugin_dir, "solver=echo", "solver.echo_level=high",
                   f"hydra.run.dir={tmp_path}/bad")
    assert bad.returncode == 1 and "echo_level" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_key_no_solver_has_stops_the_sweep_before_any_job(plugin_dir, tmp_path):
    proc = genbench(plugin_dir, "-m", "solver=glob(*)", "solver.echo_levle=3",
                    f"hydra.sweep.dir={tmp_path}/sweep")
    assert proc.returncode != 0
    assert "unknown key 'solver.echo_levle'" in proc.stderr and "echo_level" in proc.stderr
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow  # six tiny jobs in one process: ~25 s on a loaded machine
def test_solver_specific_key_fails_only_the_jobs_lacking_it(plugin_dir, tmp_path):
    """lsb has no sample_steps (it has sde_steps): its job fails, every other one runs."""
    proc = genbench(plugin_dir, "-m", "solver=glob(*)", "solver.sample_steps=20", *TINY,
                    "hydra.callbacks.sweep.report=false", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = {r["solver"]: r for r in (json.loads(p.read_text())
                                      for p in tmp_path.glob("*/results.json"))}
    assert {"cfm", "ddpm", "echo", "jko", "lsb", "pfode"} <= set(found)
    # every solver without the key fails its own job: lsb (sde_steps), the sanity ladder
    lacking = {name for name in found if name != "echo" and "sample_steps" not in
               {f.name for f in dataclasses.fields(get_solver_class(name).Config)}}
    assert "lsb" in lacking and "ddpm" not in lacking
    assert "sde_steps" in found["lsb"]["error"], "the error lists lsb's own keys"
    for name in lacking:
        result = found.pop(name)
        assert result["status"] == "failed" and result["error_type"] == "ConfigError", name
        assert "['sample_steps']" in result["error"], name
    for name, result in found.items():
        assert result["status"] == "ok", (name, result.get("error"))
        assert result["config"]["solver"]["sample_steps"] == 20, name
