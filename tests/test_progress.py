"""Progress bars: drawn on a terminal when asked, never into a pipe or a log file.

A fake terminal (a text stream whose ``isatty`` is true) stands in for stderr; the bars of
DDPM's steps, the ODE and SDE solves, the harness and the sweep must appear there inside a
progress scope, and nowhere outside it (training's inner solves) or with ``progress=false``.
"""

from __future__ import annotations

import io
import sys

import pytest
import torch
from omegaconf import OmegaConf

from genbench.core.progress import TimeBar, bar, progress_enabled, progress_scope
from genbench.core.solver import create_solver
from genbench.sweep.progress import (
    advance_sweep_bar,
    close_sweep_bar,
    open_sweep_bar,
    sweep_size,
)


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def tty(monkeypatch):
    """Call ``tty()`` in the test body: pytest's capture resets ``sys.stderr`` after setup."""
    def install() -> FakeTTY:
        stream = FakeTTY()
        monkeypatch.setattr(sys, "stderr", stream)
        return stream

    return install


def test_bars_only_on_a_terminal_and_when_asked(tty, monkeypatch):
    tty = tty()
    def drawn(**kwargs) -> bool:
        return not bar(3, desc="x", **kwargs).disable  # tqdm: None (a terminal) or False

    assert not drawn()  # no scope: off
    with progress_scope(True):
        assert progress_enabled() and drawn()
        assert not drawn(enabled=False)
        with progress_scope(False):
            assert not drawn()
        monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe or a log file
        assert not drawn()
    assert not progress_enabled()
    assert not drawn(enabled=True)  # still not a terminal


def test_time_bar_follows_the_furthest_time_either_way(tty):
    tty = tty()
    with progress_scope(True), TimeBar(1.0, 0.0, desc="backwards") as progress:
        for t in (1.0, 0.75, 0.9, 0.5):  # adaptive solvers step back and forth
            progress.reach(torch.tensor(t))
        assert progress.bar.n == 500 and progress.calls == 4


def _data() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(128, 2) * torch.tensor([1.0, 0.3]) + 0.5


@pytest.mark.parametrize(("name", "config", "label"), [
    ("ddpm", {"sample_steps": 12}, "sample ddpm (ancestral)"),
    ("cfm", {"method": "euler", "sample_steps": 6}, "ODE solve"),
    ("lsb", {"sde_steps": 6}, "SDE solve (6 steps)"),
])
def test_sampling_draws_its_bar_in_scope_only(tty, name, config, label):
    tty = tty()
    solver = create_solver(name, 2, {"steps": 5, "hidden": 16, "depth": 1, **config})
    solver.fit(_data())
    assert label not in tty.getvalue()  # training: no inner bars
    solver.sample(16, generator=torch.Generator().manual_seed(0))
    assert label not in tty.getvalue()  # outside a scope: nothing
    with progress_scope(True):
        solver.sample(16, generator=torch.Generator().manual_seed(0))
    assert label in tty.getvalue()


def test_training_bar_respects_the_terminal(tty, monkeypatch):
    tty = tty()
    solver = create_solver("ddpm", 2, {"steps": 5, "hidden": 16, "depth": 1})
    solver.fit(_data(), progress=True)
    assert "train ddpm" in tty.getvalue()
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    solver.fit(_data(), progress=True)
    assert pipe.getvalue() == ""


def test_sweep_size_counts_choices_and_ranges():
    def size(task, params=None):
        return sweep_size(OmegaConf.create(
            {"hydra": {"overrides": {"task": task}, "sweeper": {"params": params or {}}}}))

    assert size(["solver=ddpm,cfm", "seed=range(3)", "dataset=moons"]) == 6
    assert size(["seed=0,1"], {"solver": "ddpm,lsb,pfode,jko,cfm"}) == 10
    assert size(["solver=cfm"], {"solver": "ddpm,lsb"}) == 1  # the command line wins
    assert size(["solver=glob(*)"]) is None  # counting a glob needs the config's options
    assert size([]) == 1


def test_sweep_bar_counts_jobs_and_failures(tty):
    tty = tty()
    owner = object()
    config = OmegaConf.create({"progress": True, "hydra": {"overrides": {"task": ["seed=0,1,2"]}}})
    open_sweep_bar(owner, config)
    advance_sweep_bar(owner, ok=True)
    advance_sweep_bar(owner, ok=False)
    close_sweep_bar(owner)
    text = tty.getvalue()
    assert "sweep" in text and "2/3" in text and "failed=1" in text
    advance_sweep_bar(owner, ok=True)  # closed: a no-op
    quiet = object()
    open_sweep_bar(quiet, OmegaConf.merge(config, {"progress": False}))
    advance_sweep_bar(quiet, ok=True)
    close_sweep_bar(quiet)
    assert tty.getvalue() == text
