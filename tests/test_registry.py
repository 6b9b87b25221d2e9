"""The registry: registration, duplicate names, lookup errors, and entry-point plugins."""

from __future__ import annotations

import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from genbench.core.solver import (
    SOLVERS,
    Solver,
    UnknownSolverError,
    create_solver,
    get_solver_class,
    list_solvers,
    register_solver,
    reload_plugins,
)
from solvers.ddpm import DDPM


def test_builtins_are_registered():
    names = list_solvers()
    assert "ddpm" in names
    assert get_solver_class("ddpm") is DDPM
    assert names == sorted(names)


def test_unknown_name_lists_the_registered_ones():
    with pytest.raises(UnknownSolverError) as info:
        get_solver_class("no_such_solver")
    message = str(info.value)
    assert "no_such_solver" in message
    for name in list_solvers():
        assert name in message


def test_duplicate_name_is_rejected():
    with pytest.raises(ValueError, match="already registered"):

        @register_solver("ddpm")
        class Impostor(DDPM):
            pass


def test_only_solver_subclasses_register():
    with pytest.raises(TypeError, match="Solver subclass"):
        register_solver("not_a_solver")(dict)
    with pytest.raises(ValueError, match="identifier"):
        register_solver("bad name")


def test_create_solver_builds_on_device_with_config():
    solver = create_solver("ddpm", dim=3, config={"hidden": 16, "depth": 1}, device="cpu")
    assert isinstance(solver, DDPM)
    assert solver.dim == 3 and solver.config.hidden == 16


def _install_fake_distribution(root: Path, entry_points: str, modules: dict[str, str]) -> None:
    dist = root / "genbench_fake_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: genbench-fake-plugin\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(entry_points)
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    saved = SOLVERS.snapshot()
    yield tmp_path
    monkeypatch.undo()  # take the fake distribution off sys.path before rescanning
    SOLVERS.restore(saved)
    for mod in ("fake_genbench_plugin", "broken_genbench_plugin"):
        sys.modules.pop(mod, None)
    reload_plugins()


PLUGIN_SOURCE = """
    from solvers.ddpm import DDPM

    class EchoDDPM(DDPM):
        '''A third-party solver: the ddpm model under another name.'''
"""


def test_entry_point_solver_is_found(plugin_path):
    _install_fake_distribution(
        plugin_path,
        "[genbench.solvers]\necho = fake_genbench_plugin:EchoDDPM\n",
        {"fake_genbench_plugin": PLUGIN_SOURCE},
    )
    reload_plugins()
    assert "echo" in list_solvers()
    cls = get_solver_class("echo")
    assert cls.__name__ == "EchoDDPM" and issubclass(cls, Solver)
    assert cls.name == "echo"


def test_broken_plugin_warns_and_keeps_builtins(plugin_path):
    _install_fake_distribution(
        plugin_path,
        "[genbench.solvers]\nbroken = broken_genbench_plugin:Missing\n",
        {"broken_genbench_plugin": "raise ImportError('plugin is broken')\n"},
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reload_plugins()
    assert any("broken" in str(w.message) for w in caught)
    assert "ddpm" in list_solvers() and "broken" not in list_solvers()
