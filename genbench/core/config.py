"""Structured-config schemas and the one validation helper every component uses.

The root schema (:class:`RunConfig`) is registered in Hydra's ConfigStore, so a misspelt
top-level key or a wrong type fails when Hydra composes the config. Component groups
(``dataset``, ``autoencoder``, ``solver``) are open dictionaries at the root, because each
option has its own fields; each component declares a dataclass of its parameters and
:func:`validate` merges the user's values into it at the start of a run, so a misspelt key
or wrong type there fails before any data is built, naming the key and the allowed ones.
Third-party solvers bring their own dataclass the same way.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

__all__ = [
    "MAX_DATA_SCALE",
    "ConfigError",
    "check_name",
    "check_range",
    "EvalConfig",
    "LoggerConfig",
    "RunConfig",
    "register_schemas",
    "validate",
]

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing, misspelt or of the wrong type."""


def validate(schema: type[T], values: Mapping[str, Any] | None, *, what: str) -> T:
    """Merge ``values`` into the dataclass ``schema`` and return a typed instance.

    Raises :class:`ConfigError` naming the offending key, the allowed keys and ``what``
    (e.g. ``"solver 'ddpm'"``) instead of OmegaConf's internal traceback.
    """
    if values is None:
        values = {}
    if isinstance(values, DictConfig):
        values = OmegaConf.to_container(values, resolve=True)
    if dataclasses.is_dataclass(values) and not isinstance(values, type):
        values = dataclasses.asdict(values)
    allowed = [f.name for f in dataclasses.fields(schema)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {unknown} for {what}; allowed keys: {', '.join(allowed)}"
        )
    for key, value in values.items():  # a NaN or infinite setting never gives a usable job
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"invalid {what}: {key}={value} is not a finite number")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), dict(values))
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        msg = getattr(err, "msg", str(err)).split("\n")[0]
        raise ConfigError(f"invalid value for key '{key}' of {what}: {msg}") from None
    except ValueError as err:  # range checks in the schema's __post_init__
        raise ConfigError(f"invalid {what}: {err}") from None
    return obj  # type: ignore[return-value]


# Data coordinates beyond this make squared distances (W2, MMD, the solvers' losses) lose all
# precision in float32 or overflow to inf: such a job would finish "ok" with inf metrics.
MAX_DATA_SCALE = 1e6


def check_range(key: str, value: float, low: float, high: float, *,
                low_open: bool = False) -> None:
    """Raise ``ValueError`` naming ``key`` unless ``low <= value <= high`` (``<`` if open)."""
    inside = (low < value if low_open else low <= value) and value <= high
    if not inside:
        bracket = "(" if low_open else "["
        raise ValueError(f"{key} must lie in {bracket}{low:g}, {high:g}], got {value!r}")


# A name that becomes part of a folder or file name: no separator, no "..", no leading dot.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


def check_name(key: str, value: object) -> None:
    """Raise :class:`ConfigError` unless ``value`` is safe as one path component.

    ``solver.name``, ``dataset.name`` and ``autoencoder.name`` name the job's folders and
    cache files: ``../x`` would write into another job's folder, ``a/b`` outside the sweep.
    """
    text = str(value)
    if not _NAME.fullmatch(text) or ".." in text:
        raise ConfigError(
            f"{key}={text!r} cannot name a folder: use letters, digits and _ . + - only "
            "(no '/', '\\', '..' or leading '.')")


@dataclass
class EvalConfig:
    """What the harness computes (:mod:`genbench.eval.harness`); sizes are points per sample."""

    max_exact: int = 10_000
    large_n_method: str = "auto"
    sinkhorn_reg: float = 0.01
    sliced_projections: int = 500
    tv_method: str = "auto"
    tv_bins: int | None = None
    tv_histogram_max_dim: int = 3
    tv_classifier_max_n: int = 2000
    tv_monte_carlo: bool = True
    mmd_max_n: int = 2000
    density_max_n: int = 2000
    confidence: float = 0.95
    empirical_baseline: bool = False
    seed: int = 0
    plot: bool = True

    def __post_init__(self) -> None:
        if self.large_n_method not in ("auto", "sinkhorn", "sliced"):
            raise ValueError(
                "large_n_method must be 'auto', 'sinkhorn' or 'sliced', got "
                f"{self.large_n_method!r}"
            )
        if self.tv_method not in ("auto", "histogram", "classifier"):
            raise ValueError(
                f"tv_method must be 'auto', 'histogram' or 'classifier', got {self.tv_method!r}"
                " (the Monte-Carlo TV is switched by tv_monte_carlo)"
            )
        if self.tv_bins is not None and self.tv_bins < 1:
            raise ValueError(f"tv_bins must be >= 1 or null (automatic), got {self.tv_bins}")
        for key in ("max_exact", "sliced_projections", "tv_histogram_max_dim",
                    "tv_classifier_max_n", "mmd_max_n", "density_max_n"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.sinkhorn_reg <= 0:
            raise ValueError(f"sinkhorn_reg must be positive, got {self.sinkhorn_reg}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must lie in (0, 1), got {self.confidence}")


@dataclass
class LoggerConfig:
    """Experiment tracking. ``name: none`` turns tracking off; wandb is offline by default."""

    name: str = "none"
    project: str = "genbench"
    entity: str | None = None
    mode: str = "offline"
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    dir: str | None = None


@dataclass
class RunConfig:
    """The root of every genbench job."""

    dataset: dict[str, Any] = field(default_factory=dict)
    autoencoder: dict[str, Any] = field(default_factory=dict)
    solver: dict[str, Any] = field(default_factory=dict)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = 0
    device: str = "auto"
    resume: bool = True
    progress: bool = True
    cache_dir: str = "${oc.env:GENBENCH_CACHE_DIR,${oc.env:HOME,.}/.cache/genbench}"


def register_schemas() -> None:
    """Register the root schema as ``base_config`` in Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="base_config", node=RunConfig)
