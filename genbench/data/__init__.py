"""Target data sets: seeded samplers or fixed splits, identical for every solver.

``build_dataset(config, seed)`` returns :class:`DataSplits`: a training split drawn with the
run's ``seed``, and a test split plus an independent *reference* split of the same size drawn
with the data set's fixed ``eval_seed`` (so every solver and seed is scored on the same test
points, and the W2 floor between test and reference is computed once per data set).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genbench.core.config import ConfigError, validate
from genbench.data.mixtures import GaussianMixture
from genbench.data.registry import DATASETS, DatasetFamily, NoParams, register_dataset

__all__ = [
    "DATASETS", "DataSplits", "DatasetConfig", "DatasetFamily", "NoParams", "build_dataset",
    "dataset_params", "list_datasets", "register_dataset",
]


@dataclass
class DatasetConfig:
    """Fields common to every data set; the family adds its own (its ``params``)."""

    name: str = "moons"
    n_train: int = 20000
    n_test: int = 2000
    eval_seed: int = 12345

    def __post_init__(self) -> None:
        if self.n_train < 1 or self.n_test < 2:
            raise ValueError(f"n_train must be >= 1 and n_test >= 2, got {self.n_train}, "
                             f"{self.n_test}")


@dataclass
class DataSplits:
    """Training, test and reference points (float32 tensors) and what is known of the target."""

    name: str
    train: Tensor
    test: Tensor
    reference: Tensor
    log_prob: Callable[[Tensor], Tensor] | None = None
    sampler: Callable[[int, np.random.Generator], np.ndarray] | None = None
    # The target mixture where it is one (per-mode weights and modes found need it).
    mixture: GaussianMixture | None = None

    @property
    def dim(self) -> int:
        return self.train.shape[1]


def _rng(name: str, seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, zlib.crc32(name.encode())])


def list_datasets() -> list[str]:
    """Names of every registered data set, built-in and plugin, sorted."""
    return DATASETS.names()


def dataset_params(name: str) -> type:
    """The dataclass of the keys data set ``name`` adds to :class:`DatasetConfig`."""
    return DATASETS.get(name).params


def build_dataset(config: Mapping[str, Any], seed: int) -> DataSplits:
    """Build the splits of the data set described by ``config`` for run ``seed``."""
    config = dict(config)
    name = config.get("name", "moons")
    family = DATASETS.get(name)
    common = {k: config.pop(k) for k in list(config) if k in DatasetConfig.__dataclass_fields__}
    base = validate(DatasetConfig, common, what=f"dataset {name!r}")
    params = validate(family.params, config, what=f"dataset {name!r}")
    target = family.factory(params)

    log_prob, mixture = None, None
    if isinstance(target, np.ndarray):
        train, test, reference = _split_finite(target, base)
        sampler = None
    else:
        sampler = target if callable(target) else target.sample
        train = sampler(base.n_train, _rng(name, seed, 0))
        test = sampler(base.n_test, _rng(name, base.eval_seed, 1))
        reference = sampler(base.n_test, _rng(name, base.eval_seed, 2))
        if isinstance(target, GaussianMixture):
            log_prob, mixture = target.log_prob, target

    def as_tensor(a: np.ndarray) -> Tensor:
        return torch.as_tensor(a, dtype=torch.float32)

    return DataSplits(name, as_tensor(train), as_tensor(test), as_tensor(reference),
                      log_prob=log_prob, sampler=sampler, mixture=mixture)


def _split_finite(data: np.ndarray, base: DatasetConfig) -> tuple[np.ndarray, ...]:
    n_total = len(data)
    if 2 * base.n_test >= n_total:
        raise ConfigError(
            f"dataset has {n_total} points: n_test={base.n_test} leaves no training split "
            f"(test and reference take 2 * n_test); use n_test < {n_total // 2}"
        )
    order = np.random.default_rng(base.eval_seed).permutation(n_total)
    test, reference = data[order[: base.n_test]], data[order[base.n_test : 2 * base.n_test]]
    train = data[order[2 * base.n_test :]]
    return train[: base.n_train], test, reference
