"""Structured-config schemas, the one validation helper and the one list of result-neutral keys.

The dataclasses are the schema of every setting: :class:`RunConfig` (the root),
:class:`EvalConfig`, :class:`LoggerConfig` here, and each component's own (a solver's
``Config``, ``DatasetConfig``, ``AutoencoderConfig``). :mod:`genbench.sweep.schemas` registers
them in Hydra's ConfigStore, so most bad keys and types fail at composition; the component
groups (``dataset``, ``autoencoder``, ``solver``) are open dictionaries at the root, and
:func:`validate` merges a job's values into the component's dataclass when the job starts,
so what composition lets through fails before any data is built, naming the key and the
allowed ones. Third-party solvers bring their own dataclass the same way.
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

from genbench.core.budget import BudgetConfig
from genbench.core.errors import ConfigError

__all__ = [
    "MAX_DATA_SCALE",
    "ConfigError",
    "check_name",
    "check_range",
    "EvalConfig",
    "LoggerConfig",
    "RESULT_NEUTRAL_KEYS",
    "RunConfig",
    "is_result_neutral",
    "validate",
]

T = TypeVar("T")

# The settings that never change a job's numbers, as dotted keys of the composed config; a
# key covers its sub-keys (``logger`` covers ``logger.mode``). The pipeline reuses a result
# whatever their values (resume), the sweep report never labels a variant by them, and
# ``hydra.job.config.override_dirname.exclude_keys`` (configs/config.yaml) keeps them out of
# a job's folder name, so a sweep resumed with another launcher or logger finds its results
# (tests/test_config.py checks that list against this one).
RESULT_NEUTRAL_KEYS: tuple[str, ...] = (
    "resume", "progress", "device", "cache_dir", "eval.plot", "batch_seeds",
    "solver.ot_prefetch", "logger", "launcher", "hydra.sweep.dir", "hydra.launcher",
)


def is_result_neutral(key: str) -> bool:
    """Whether the dotted ``key`` is (under) one of :data:`RESULT_NEUTRAL_KEYS`."""
    return any(key == k or key.startswith(f"{k}.") for k in RESULT_NEUTRAL_KEYS)


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
    # a composed group node keeps its option's dataclass type: merged into a dict field, it
    # would come back as that dataclass instead of a dict
    values = {k: OmegaConf.to_container(v, resolve=True) if isinstance(v, DictConfig) else v
              for k, v in values.items()}
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
    """What the harness computes (:mod:`genbench.eval.harness`), option ``eval=default``.

    Generated samples are scored against the data set's ``n_test`` held-out points, beside
    each metric's floor; sizes are points per sample.
    """

    max_exact: int = 10_000  # exact W2 up to this many points per side, then large_n_method
    # auto (sinkhorn on a GPU, sliced on a CPU) | sinkhorn (debiased Sinkhorn divergence) |
    # sliced (sliced W2)
    large_n_method: str = "auto"
    sinkhorn_reg: float = 0.01  # entropic eps relative to the mean squared cost
    sliced_projections: int = 500  # random directions of the sliced W2
    # auto (histogram up to tv_histogram_max_dim, else classifier) | histogram | classifier
    tv_method: str = "auto"
    tv_bins: int | None = None  # histogram cells per axis; None: about 5 test points per cell
    tv_histogram_max_dim: int = 3  # the largest dimension scored by the histogram TV (auto)
    tv_classifier_max_n: int = 2000  # points per side for the classifier TV (subsampled)
    tv_monte_carlo: bool = True  # also E_p[(1 - q/p)_+] where both densities are exact
    mmd_max_n: int = 2000  # points per side for the MMD (subsampled)
    density_max_n: int = 2000  # test points for the NLL and the Monte-Carlo TV (log_prob is slow)
    confidence: float = 0.95  # level of the TV confidence intervals
    # also score the training points themselves (a memoriser), the rate study's baseline:
    # one more W2 at n_train points (exact up to max_exact)
    empirical_baseline: bool = False
    seed: int = 0  # subsampling, sliced directions and the TV classifier
    # test: the data set's test split | validation: rows held out of the training split
    # (tuning, experiment=tune: the test points are never read)
    split: str = "test"
    plot: bool = True  # write samples.png beside results.json
    # Uncertainty and the calibrated verdict (genbench.eval.verdict, docs/verdicts.md).
    # Independent reference draws behind each floor (fresh draws, or resplits of a finite
    # set), cached per data set; 0: today's single floor draw, no intervals, no verdict.
    floor_draws: int = 49
    # "worse than the reference" when the rank p <= verdict_alpha (1/(R+1) = 0.02 at R = 49)
    verdict_alpha: float = 0.02
    prdc_k: int = 5  # neighbours of the precision/recall/density/coverage balls
    mmd_permutations: int = 0  # > 0: also the MMD^2 permutation p-value (0.6-1.4 s per job)
    headline: str = "auto"  # auto (mmd2 in <= 2-D, else w2_ratio) | w2_ratio | mmd2
    bootstrap: int = 1000  # resamples of the bootstrap intervals of mean-type scores
    # threads scoring the floor draws on a cold cache; 0: every core this process may use
    # (each draw runs single-threaded, so the numbers do not depend on it)
    floor_workers: int = 0

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
        if self.split not in ("test", "validation"):
            raise ValueError(f"split must be 'test' or 'validation', got {self.split!r}")
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
        if self.floor_draws != 0 and self.floor_draws < 3:
            raise ValueError(f"floor_draws must be 0 (off) or >= 3, got {self.floor_draws}")
        if not 0 < self.verdict_alpha < 1:
            raise ValueError(f"verdict_alpha must lie in (0, 1), got {self.verdict_alpha}")
        if self.prdc_k < 1 or self.mmd_permutations < 0 or self.bootstrap < 100:
            raise ValueError("prdc_k must be >= 1, mmd_permutations >= 0 and bootstrap >= 100, "
                             f"got {self.prdc_k}, {self.mmd_permutations}, {self.bootstrap}")
        if self.mmd_permutations and self.mmd_permutations < 19:
            raise ValueError(f"mmd_permutations must be 0 (off) or >= 19, "
                             f"got {self.mmd_permutations}")
        if isinstance(self.floor_workers, bool) or self.floor_workers < 0:
            raise ValueError(f"floor_workers must be an int >= 0 (0: every usable core), "
                             f"got {self.floor_workers!r}")
        if self.headline not in ("auto", "w2_ratio", "mmd2"):
            raise ValueError(f"headline must be 'auto', 'w2_ratio' or 'mmd2', "
                             f"got {self.headline!r}")


@dataclass
class LoggerConfig:
    """Experiment tracking (:mod:`genbench.run.tracking`), options ``logger=none|wandb``.

    ``none`` (the default) tracks nothing: results.json and genbench-report hold everything.
    ``wandb`` makes one wandb run per job, offline unless asked (no account, no network;
    upload later with ``wandb sync <run folder>``); see docs/sweeps.md.
    """

    name: str = "none"
    project: str = "genbench"
    entity: str | None = None  # your wandb user or team (online mode)
    mode: str = "offline"  # offline | online (needs `wandb login`) | disabled
    group: str | None = None  # None: one group per sweep, named after the sweep folder
    tags: list[str] = field(default_factory=list)
    dir: str | None = None  # None: each job's own folder (the sweep report's run: <sweep>/report)


@dataclass
class RunConfig:
    """The root of every genbench job."""

    dataset: dict[str, Any] = field(default_factory=dict)
    autoencoder: dict[str, Any] = field(default_factory=dict)
    solver: dict[str, Any] = field(default_factory=dict)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)  # shared cost (core/budget.py)
    seed: int = 0
    # Seeds of one solver run together (genbench.run.seeds.run_seeds; in a sweep, jobs that
    # differ only by seed under launcher=local) train as one batched model
    # (genbench.core.ensemble); result-neutral up to floating-point rounding.
    batch_seeds: bool = False
    device: str = "auto"
    resume: bool = True
    progress: bool = True
    cache_dir: str = "${oc.env:GENBENCH_CACHE_DIR,${oc.env:HOME,.}/.cache/genbench}"

