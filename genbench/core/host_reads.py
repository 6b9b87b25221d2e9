"""Count host read-backs of tensor values: the calls that synchronise with a GPU.

On a GPU, reading a device tensor's value on the host (``.item()``, ``float(t)``,
``bool(t)``, ``int(t)``, ``.tolist()``, ``.cpu()``, ``.numpy()``) waits for every queued
kernel, and so does ``torch.tensor(python_data, device=...)`` (a blocking copy;
``torch.full`` is not). :func:`count_host_reads` counts those calls by the code location that
makes them, on any device, so a CPU-only test can show that a solver's training and
sampling loops make none per step. Plugin authors can run the same check on their solver.

    with count_host_reads() as reads:
        solver.fit(z)
    mine = reads.within(root).by_function()   # {(path below root, function): count}

References:
    PyTorch documentation, "CUDA semantics: asynchronous execution"
    (``torch.cuda.set_sync_debug_mode`` reports the same reads on a GPU).
    pytorch/pytorch issue 120996 (``torch.tensor(3.14, device="cuda")`` synchronises,
    ``torch.full`` does not).
"""

from __future__ import annotations

import collections
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import torch

__all__ = ["CREATORS", "READ_METHODS", "HostReads", "Site", "count_host_reads"]

READ_METHODS = ("item", "__float__", "__bool__", "__int__", "__index__", "tolist", "cpu",
                "numpy")
# torch.tensor / torch.as_tensor of Python data with an explicit device.
CREATORS = ("tensor", "as_tensor")


class Site(NamedTuple):
    """Where a read was made: the call, the file, the line and the enclosing function."""

    call: str
    file: str
    line: int
    function: str


class HostReads(collections.Counter):
    """A counter of :class:`Site` with views by file."""

    def within(self, root: Path, exclude: tuple[str, ...] = (".venv",)) -> HostReads:
        """Only the reads made from files below ``root`` (outside ``exclude`` folders)."""
        root = Path(root).resolve()
        kept = HostReads()
        for site, n in self.items():
            path = Path(site.file)
            if root in path.parents and not set(exclude) & set(path.parts):
                kept[site._replace(file=path.relative_to(root).as_posix())] += n
        return kept

    def by_function(self) -> collections.Counter:
        """``{(file, function): count}``."""
        out: collections.Counter = collections.Counter()
        for site, n in self.items():
            out[(site.file, site.function)] += n
        return out


@contextlib.contextmanager
def count_host_reads() -> Iterator[HostReads]:
    """Count read-backs and host-data tensor creations (with a device) made inside."""
    counts = HostReads()
    methods = {name: getattr(torch.Tensor, name) for name in READ_METHODS}
    creators = {name: getattr(torch, name) for name in CREATORS}

    def record(call: str) -> None:
        frame = sys._getframe(2)
        counts[Site(call, frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)] += 1

    def wrap(name: str, original: Callable) -> Callable:
        def wrapper(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            record(name)
            return original(self, *args, **kwargs)
        return wrapper

    def wrap_creator(name: str, original: Callable) -> Callable:
        def wrapper(data: Any, *args: Any, **kwargs: Any) -> Any:
            if not isinstance(data, torch.Tensor) and kwargs.get("device") is not None:
                record(f"torch.{name}(host data, device=)")
            return original(data, *args, **kwargs)
        return wrapper

    for name, original in methods.items():
        setattr(torch.Tensor, name, wrap(name, original))
    for name, original in creators.items():
        setattr(torch, name, wrap_creator(name, original))
    try:
        yield counts
    finally:
        for name, original in methods.items():
            setattr(torch.Tensor, name, original)
        for name, original in creators.items():
            setattr(torch, name, original)
