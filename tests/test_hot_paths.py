"""No host read-back or blocking host-to-device copy per step in training and sampling.

Reads are counted by :func:`genbench.core.host_reads.count_host_reads` (this machine has no GPU),
by the file that makes them: each solver trains (or samples) at two step budgets, and the
calls made from this repository's code must not grow with the number of steps, except the
loss read once per ``log_every`` steps. Reads inside libraries (torch.optim's host step
counters, torchdiffeq's and torchsde's step control) are not genbench's and are not counted.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from genbench.core.host_reads import count_host_reads
from genbench.core.solver import get_solver_class, list_solvers

ROOT = Path(__file__).resolve().parents[1]
LOG_EVERY = 10
TINY = {"hidden": 16, "depth": 2, "batch_size": 32, "log_every": LOG_EVERY, "warmup": 2,
        "max_blocks": 1}
# Reads that are the design, not an accident: the exact OT plan is solved by POT on the host.
BY_DESIGN = {("solvers/cfm.py", "ot_pairs"), ("solvers/ot_coupling.py", "exact_match")}
# The setting that makes each solver's sampler take a given number of steps.
SAMPLER_STEPS = {"cfm": ("sample_steps", {"method": "euler"}),
                 "pfode": ("sde_steps", {}),  # its default sampler (the ODE path: cfm)
                 "ddpm": ("sample_steps", {}),
                 "lsb": ("sde_steps", {}),
                 "jko": ("sample_steps", {"sample_method": "euler"})}
# Per-step reads known and not yet fixed, by solver, with the reason (none left): an entry
# makes the test a strict xfail, so it fails again once the read is gone.
KNOWN_TRAIN: dict[str, str] = {}
KNOWN_SAMPLE: dict[str, str] = {}


@contextlib.contextmanager
def repo_reads() -> Iterator[collections.Counter]:
    """Reads made from this repository's code, by (file, function), minus the designed ones."""
    counts: collections.Counter = collections.Counter()
    with count_host_reads() as reads:
        yield counts
    for where, n in reads.within(ROOT).by_function().items():
        if where not in BY_DESIGN:
            counts[where] += n


def tiny(name: str, **extra: object) -> dict:
    fields = {f.name for f in dataclasses.fields(get_solver_class(name).Config)}
    return {k: v for k, v in {**TINY, **extra}.items() if k in fields}


def _params(known: dict[str, str], names: list[str]) -> list:
    return [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=known[n]))
            if n in known else n for n in names]


def test_counter_sees_reads_from_this_file_and_restores_torch():
    original, tensor = torch.Tensor.__float__, torch.tensor
    with repo_reads() as counts:
        float(torch.ones(()))
        torch.ones(2).tolist()
        torch.tensor([0.0, 1.0], device="cpu")  # host data to a device: counted
        torch.tensor([0.0, 1.0])  # stays on the host: not counted
    here = ("tests/test_hot_paths.py", "test_counter_sees_reads_from_this_file_and_restores_torch")
    assert counts == {here: 3}
    assert torch.Tensor.__float__ is original and torch.tensor is tensor


@pytest.mark.parametrize("name", _params(KNOWN_TRAIN, list_solvers()))
def test_training_reads_back_only_every_log_every_steps(name):
    data = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    totals = []
    for steps in (2 * LOG_EVERY, 4 * LOG_EVERY):
        torch.manual_seed(0)
        solver = get_solver_class(name)(2, tiny(name, steps=steps))
        with repo_reads() as counts:
            solver.fit(data)
        totals.append(counts)
    grown = {k: totals[1][k] - totals[0][k] for k in totals[1] if totals[1][k] > totals[0][k]}
    # 2 * LOG_EVERY more steps allow 2 more loss reads, and nothing else.
    assert sum(grown.values()) <= 2, f"{name}: reads growing with the step count: {grown}"


SAMPLERS = [n for n in list_solvers() if n in SAMPLER_STEPS]


@pytest.mark.parametrize("name", _params(KNOWN_SAMPLE, SAMPLERS))
def test_sampling_reads_do_not_grow_with_the_steps(name):
    torch.manual_seed(0)
    solver = get_solver_class(name)(2, tiny(name, steps=LOG_EVERY))
    solver.fit(torch.randn(256, 2, generator=torch.Generator().manual_seed(0)))
    key, extra = SAMPLER_STEPS[name]
    totals = []
    for steps in (5, 15):
        for k, v in {**extra, key: steps}.items():
            setattr(solver.config, k, v)
        with repo_reads() as counts:
            solver.sample(16, generator=torch.Generator().manual_seed(0))
        totals.append(counts)
    grown = {k: totals[1][k] - totals[0][k] for k in totals[1] if totals[1][k] > totals[0][k]}
    assert not grown, f"{name}: reads growing with the sampler steps: {grown}"
