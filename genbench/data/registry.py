"""The data set registry: a name -> a family (its parameters dataclass and its factory).

A family's ``factory(params)`` returns the target: a sampler ``(n, rng) -> array``, an object
with ``.sample(n, rng)`` (and ``.log_prob`` when the density is known), or a fixed array (a
finite data set, split once). Built-ins register with :func:`register_dataset` when their
module is imported; plugins use the entry-point group ``genbench.datasets`` and name a
:class:`DatasetFamily` or a module that registers on import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from genbench.core.registry import Registry

__all__ = ["DATASETS", "DatasetFamily", "NoParams", "register_dataset"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class NoParams:
    """The parameters of a data set that has none besides the common ones."""


@dataclass(frozen=True)
class DatasetFamily:
    """``factory(params)`` builds the target from a validated ``params`` dataclass."""

    factory: Callable[[Any], Any]
    params: type = NoParams


DATASETS: Registry[DatasetFamily] = Registry(
    "dataset", "genbench.datasets",
    builtins=("genbench.data.toy2d", "genbench.data.mixtures", "genbench.data.manifold",
              "genbench.data.digits", "genbench.data.file"),
    accepts=lambda obj: isinstance(obj, DatasetFamily), describe="DatasetFamily")


def register_dataset(name: str, params: type = NoParams) -> Callable[[F], F]:
    """Decorator registering ``factory(params) -> target`` as data set ``name``."""
    def decorator(factory: F) -> F:
        DATASETS.add(name, DatasetFamily(factory, params))
        return factory

    return decorator
