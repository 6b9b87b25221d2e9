"""Atomic writes of results, arrays and checkpoints (``torch.save`` through :func:`atomic_write`).

Every file genbench writes lands by write-to-temporary then :func:`os.replace`, so a job
killed mid-write (preemption, out of memory) never leaves a truncated file that a resumed
sweep would take for a finished result.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "STALE_TMP_SECONDS", "atomic_csv_write", "atomic_json_dump", "atomic_npz_save",
    "atomic_write", "exclusive_lock", "file_mode", "read_json",
]

# A temporary file older than this is a torn write of a killed process, not one in flight.
STALE_TMP_SECONDS = 3600.0
_umask_lock = threading.Lock()


def file_mode() -> int:
    """The mode a plain ``open()`` would give a new file: ``0o666`` less the umask.

    :func:`tempfile.mkstemp` creates files ``0600`` whatever the umask, so teammates sharing a
    sweep or cache folder could not read them; the temporary file is chmod-ed to this mode.
    The umask can only be read by setting it, hence the lock (threads share it).
    """
    with _umask_lock:
        mask = os.umask(0o077)
        os.umask(mask)
    return 0o666 & ~mask


def _clean_stale_tmp(folder: Path, now: float) -> None:
    """Remove torn ``.*.tmp`` files of killed writers (older than :data:`STALE_TMP_SECONDS`)."""
    try:
        for tmp in folder.glob(".*.tmp"):
            try:
                if now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                    tmp.unlink()
            except OSError:  # gone already, or not ours to remove
                pass
    except OSError:
        pass


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it in place.

    The file gets the umask's mode (like ``open()``); stale temporary files that killed writers
    left in the same folder are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_tmp(path.parent, time.time())
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _is_tensor(obj: Any) -> bool:
    # torch is imported lazily so that reading results (the report) does not load it: an
    # object can only be a tensor when torch is already imported.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        obj = obj.item()
    if _is_tensor(obj) and obj.numel() == 1:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_json_dump(obj: Any, path: Path) -> Path:
    """Write ``obj`` as indented JSON (NaN as null) atomically."""
    text = json.dumps(_jsonable(obj), indent=2, sort_keys=False, allow_nan=False)
    return atomic_write(path, lambda fh: fh.write(text.encode() + b"\n"))


def atomic_csv_write(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows as CSV with a header; columns in first-seen order (missing cells left empty)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write(path, lambda fh: fh.write(text.getvalue().encode()))


def atomic_npz_save(path: Path, **arrays: Any) -> Path:
    """Save named arrays (tensors are moved to CPU) as a compressed ``.npz`` atomically."""
    data = {k: (v.detach().cpu().numpy() if _is_tensor(v) else np.asarray(v))
            for k, v in arrays.items()}
    return atomic_write(path, lambda fh: np.savez_compressed(fh, **data))


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object at ``path``, or ``None`` when missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[OSError | None]:
    """Hold an exclusive :func:`fcntl.flock` on ``<path>.lock`` (created beside ``path``).

    Parallel jobs that would compute the same cache entry serialise on it: the first
    computes and writes, the others wait, then read what it wrote. Yields ``None`` while the
    lock is held, or the :class:`OSError` that kept the lock file from being created (a
    read-only or full cache folder): the caller then runs unlocked and uncached.
    """
    lock = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT, file_mode())
    except OSError as err:
        yield err
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits while another process or thread holds it
        yield None
    finally:
        os.close(fd)  # closing releases the lock
