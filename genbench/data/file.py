"""The user's own data: ``dataset=file dataset.path=PATH``, an array of shape ``(n, d)``.

Read from ``.npy``, ``.npz`` (the array ``key``, or the only one), ``.csv`` (comma-separated
numbers, an optional header line) or ``.pt`` (a tensor, or a dict holding it under ``key``).
The rows are split once like the built-in finite sets (:func:`genbench.data._split_finite`):
a permutation drawn with ``eval_seed`` gives ``n_test`` test rows, ``n_test`` reference rows
and the rest for training, the same for every solver and seed. Every check (missing file,
unknown extension, shape, NaN or infinite values, too few rows) runs when the job starts,
before the encoder or a solver is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genbench.core.errors import ConfigError
from genbench.data.registry import register_dataset

__all__ = ["EXTENSIONS", "FileParams", "load_array"]

EXTENSIONS = (".npy", ".npz", ".csv", ".pt")
MIN_ROWS = 5  # a training row beside at least two test and two reference rows


@dataclass
class FileParams:
    path: str = ""  # a .npy, .npz, .csv or .pt file holding an (n, d) array
    key: str | None = None  # the array's name in a .npz file or a .pt dict (None: the only one)


def _pick(arrays: dict, key: str | None, path: Path) -> object:
    names = sorted(str(k) for k in arrays)
    if key is not None:
        if key not in arrays:
            raise ConfigError(f"{path} has no array {key!r}; it holds: {', '.join(names)}")
        return arrays[key]
    if len(arrays) != 1:
        raise ConfigError(f"{path} holds {len(arrays)} arrays ({', '.join(names)}); "
                          "choose one with dataset.key=NAME")
    return next(iter(arrays.values()))


def _read_csv(path: Path) -> np.ndarray:
    with path.open() as fh:
        first = fh.readline()
    try:
        [float(v) for v in first.split(",")]
        header = 0
    except ValueError:  # a header line of column names
        header = 1
    try:
        return np.loadtxt(path, delimiter=",", skiprows=header, ndmin=2, dtype=np.float64)
    except ValueError as err:
        raise ConfigError(f"{path}: not a comma-separated table of numbers: {err}") from None


def _read_pt(path: Path, key: str | None) -> object:
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict):
        obj = _pick(obj, key, path)
    return obj.numpy() if isinstance(obj, torch.Tensor) else obj


def load_array(path: str | Path, key: str | None = None) -> np.ndarray:
    """The checked ``(n, d)`` float64 array stored in ``path``; :class:`ConfigError` if not."""
    if not str(path):
        raise ConfigError("dataset=file needs dataset.path=PATH (a .npy, .npz, .csv or .pt "
                          "file of shape (n, d))")
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise ConfigError(f"dataset.path {str(path)!r}: unknown extension {suffix or '(none)'!r};"
                          f" allowed: {', '.join(EXTENSIONS)}")
    if not path.is_file():
        raise ConfigError(f"dataset.path {str(path)!r}: no such file")
    if suffix == ".npy":
        data = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            data = _pick(dict(archive), key, path)
    elif suffix == ".csv":
        data = _read_csv(path)
    else:
        data = _read_pt(path, key)
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] < 1:
        raise ConfigError(f"{path}: expected an array of shape (n, d), got shape {data.shape}"
                          + (" (a single column? reshape to (n, 1))" if data.ndim == 1 else ""))
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise ConfigError(f"{path}: expected real numbers, got dtype {data.dtype}")
    data = data.astype(np.float64)
    bad = ~np.isfinite(data).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ConfigError(f"{path}: {bad.sum()} row(s) with NaN or infinite values "
                          f"(first: {rows[:5].tolist()}); drop or impute them")
    if len(data) < MIN_ROWS:
        raise ConfigError(f"{path}: {len(data)} rows; at least {MIN_ROWS} are needed "
                          "(test, reference and training rows)")
    return data


@register_dataset("file", FileParams)
def file_dataset(params: FileParams) -> np.ndarray:
    """The rows of the user's file, split like every finite data set."""
    return load_array(params.path, params.key)
