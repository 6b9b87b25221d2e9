"""Every config group's options, registered in Hydra's ConfigStore from the dataclasses.

The dataclasses are the one source of every default and of its tuning note (the field
comments). Each option of a group is its component's dataclass with ``name`` set:
``solver/<name>`` from the ``Config`` of every registered solver, plugins included (so
``solver=NAME`` needs no YAML), ``dataset/<name>``, ``autoencoder/<kind>``, ``eval/default``,
``logger/none`` and ``logger/wandb``. A user's YAML option extends one under another name
(``defaults: [/solver/ddpm@_here_, _self_]`` in ``solver/ddpm_fast.yaml``). A YAML option of
``configs/`` that keeps a built-in's name and changes a few values takes the place of the
stored option, which moves to ``schema/<group>/<name>`` for the YAML to extend::

    defaults:
      - /schema/dataset/digits@_here_
      - _self_
    n_test: 300

Where a bad value fails:

- the root, ``eval``, ``logger`` and ``autoencoder`` (one set of keys for every option): a
  misspelt key or a wrong type fails at composition.
- ``solver`` and ``dataset`` (families whose options have different keys): a wrong type of a
  key the option has fails at composition; a key no option of the group has fails at the
  command line (:func:`check_overrides`); a key that *other* options have passes
  composition and fails the job before any work, naming the allowed keys
  (:func:`genbench.core.config.validate`, called by the pipeline). Hydra composes each job
  of a multirun in its launcher, where one composition error stops the whole sweep; so
  here ``solver=glob(*) solver.sample_steps=20`` fails lsb's jobs only (lsb has
  ``sde_steps``) and the other solvers' jobs run.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from genbench.codecs import CODECS, AutoencoderConfig
from genbench.core.config import ConfigError, EvalConfig, LoggerConfig, RunConfig
from genbench.core.solver import get_solver_class, list_solvers
from genbench.data import DatasetConfig, dataset_params, list_datasets
from genbench.run.tracking import LOGGERS

if TYPE_CHECKING:  # importlib.resources.abc is Python >= 3.11
    from importlib.resources.abc import Traversable

__all__ = ["CONFIG_PATH", "OPEN_GROUPS", "check_overrides", "config_dir", "group_options",
           "register_schemas"]

# The checkout's configs/ when run from a checkout, else the installed genbench_configs.
_CHECKOUT_CONFIGS = Path(__file__).resolve().parents[2] / "configs"
_IN_CHECKOUT = (_CHECKOUT_CONFIGS / "config.yaml").is_file()
CONFIG_PATH = str(_CHECKOUT_CONFIGS) if _IN_CHECKOUT else "pkg://genbench_configs"

# Groups whose options have different keys: a key of one option may be absent from another.
OPEN_GROUPS = ("solver", "dataset")
_UNNAMED = ("eval",)  # one option, no name key


def config_dir() -> Traversable:
    """The folder of the YAML configs (:data:`CONFIG_PATH`)."""
    return _CHECKOUT_CONFIGS if _IN_CHECKOUT else importlib.resources.files("genbench_configs")


def _dataset_schema(name: str) -> type:
    params = dataset_params(name)
    if not dataclasses.fields(params):
        return DatasetConfig
    # bases in this order list the common keys first
    return dataclasses.make_dataclass(f"{params.__name__}Dataset", [],
                                      bases=(params, DatasetConfig))


def group_options() -> dict[str, dict[str, type]]:
    """``group -> option name -> schema dataclass`` for every group built from dataclasses."""
    return {
        "solver": {name: get_solver_class(name).Config for name in list_solvers()},
        "dataset": {name: _dataset_schema(name) for name in list_datasets()},
        "autoencoder": dict.fromkeys(CODECS.names(), AutoencoderConfig),
        "eval": {"default": EvalConfig},
        "logger": dict.fromkeys(LOGGERS, LoggerConfig),
    }


def _option_node(schema: type, name: str | None, *, open_keys: bool) -> DictConfig:
    has_name = any(f.name == "name" for f in dataclasses.fields(schema))
    if name is not None and not has_name:  # a solver's Config gains the key name
        schema = dataclasses.make_dataclass(
            f"{schema.__name__}Option", [("name", str, dataclasses.field(default=name))],
            bases=(schema,))
    node = OmegaConf.structured(schema)
    if name is not None:
        node.name = name
    if open_keys:
        OmegaConf.set_struct(node, False)
    return node


def register_schemas() -> None:
    """Store the root schema (``base_config``) and every group's options in the ConfigStore.

    Called when the ``genbench`` command starts, after plugins are loaded; call it before
    using Hydra's compose API on the packaged configs.
    """
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=RunConfig)
    root = config_dir()
    for group, options in group_options().items():
        for name, schema in options.items():
            node = _option_node(schema, None if group in _UNNAMED else name,
                                open_keys=group in OPEN_GROUPS)
            if root.joinpath(group).joinpath(f"{name}.yaml").is_file():
                # stored beside a YAML option of the same name, Hydra <= 1.3 would merge the
                # two with a deprecation warning (automatic schema matching)
                cs.store(group=f"schema/{group}", name=name, node=node)
            else:
                cs.store(group=group, name=name, node=node)


def check_overrides(args: Iterable[str]) -> None:
    """Fail on a command-line key that no option of an open group has (a typo).

    ``solver.sampel_steps=20`` fails here, naming the keys the solvers have;
    ``solver.sample_steps=20`` passes (ddpm has it) and fails only the jobs of a solver that
    lacks it. Arguments that are not ``key=value`` overrides are left to Hydra.
    """
    parser = OverridesParser.create()
    options = None
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            (override,) = parser.parse_overrides([arg])
        except Exception:  # noqa: BLE001 - Hydra reports malformed overrides itself
            continue
        group, _, rest = override.key_or_group.partition(".")
        if group not in OPEN_GROUPS or not rest or override.is_delete():
            continue
        options = options or group_options()
        known = {f.name for schema in options[group].values()
                 for f in dataclasses.fields(schema)} | {"name"}
        field_name = rest.split(".")[0]
        if field_name not in known:
            raise ConfigError(
                f"unknown key '{override.key_or_group}': no {group} has '{field_name}'; "
                f"keys of the {group}s: {', '.join(sorted(known))}")
