"""Config composition with Hydra's compose API: every group option, and schema errors."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from genbench.codecs.autoencoder import AutoencoderConfig
from genbench.core.config import ConfigError, EvalConfig, LoggerConfig, RunConfig, register_schemas
from genbench.core.registry import get_solver_class
from genbench.data import DatasetConfig, build_dataset
from genbench.run.pipeline import _as_run_config
from tests.conftest import CONFIG_DIR

register_schemas()


def compose_run(overrides: list[str], hydra_section: bool = False):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides,
                       return_hydra_config=hydra_section)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def test_default_config_composes_and_validates():
    cfg = compose_run([])
    rc = _as_run_config(cfg)
    assert rc.solver["name"] == "ddpm" and rc.dataset["name"] == "moons"
    assert rc.device == "auto"


@pytest.mark.parametrize("option", options("dataset"))
def test_every_dataset_option(option):
    cfg = compose_run([f"dataset={option}", "dataset.n_train=50"])
    ds = OmegaConf.to_container(cfg.dataset)
    assert ds["name"] == option
    common = {f.name for f in dataclasses.fields(DatasetConfig)}
    assert common <= set(ds), "every dataset yaml lists the common keys"
    build_dataset(ds | {"n_test": min(ds["n_test"], 100)}, seed=0)  # validates every key


@pytest.mark.parametrize("option", options("autoencoder"))
def test_every_autoencoder_option(option):
    cfg = compose_run([f"autoencoder={option}"])
    values = OmegaConf.to_container(cfg.autoencoder)
    assert set(values) == {f.name for f in dataclasses.fields(AutoencoderConfig)}
    assert values["name"] == option


@pytest.mark.parametrize("option", options("solver"))
def test_every_solver_option(option):
    cfg = compose_run([f"solver={option}"])
    values = OmegaConf.to_container(cfg.solver)
    cls = get_solver_class(values.pop("name"))
    cls(2, values)  # the yaml's values pass the solver's own schema


@pytest.mark.parametrize("option", options("eval"))
def test_every_eval_option(option):
    cfg = compose_run([f"eval={option}"])
    assert isinstance(OmegaConf.to_object(cfg.eval), EvalConfig)
    assert set(yaml.safe_load((CONFIG_DIR / "eval" / f"{option}.yaml").read_text()) or {}) <= {
        f.name for f in dataclasses.fields(EvalConfig)}


@pytest.mark.parametrize("option", options("logger"))
def test_every_logger_option(option):
    cfg = compose_run([f"logger={option}"])
    assert isinstance(OmegaConf.to_object(cfg.logger), LoggerConfig)
    assert cfg.logger.name == option


@pytest.mark.parametrize("option", options("launcher"))
def test_every_launcher_option(option):
    try:
        cfg = compose_run([f"launcher={option}"], hydra_section=True)
    except ConfigCompositionException as err:
        pytest.skip(f"launcher plugin for {option!r} not installed: {err}")
    assert cfg.hydra.launcher._target_.startswith("hydra")


@pytest.mark.parametrize("option", options("experiment"))
def test_every_experiment_option(option):
    cfg = compose_run([f"experiment={option}"])
    assert isinstance(_as_run_config(cfg), RunConfig)


def test_misspelt_top_level_key_fails_at_composition():
    with pytest.raises(ConfigCompositionException, match="sed"):
        compose_run(["sed=3"])


def test_wrong_type_fails_at_composition_naming_the_key():
    with pytest.raises(ConfigCompositionException, match="seed"):
        compose_run(["seed=abc"])
    with pytest.raises(ConfigCompositionException, match="max_exact"):
        compose_run(["eval.max_exact=lots"])


def test_misspelt_solver_key_names_key_and_allowed_ones():
    cfg = compose_run(["+solver.stepz=3"])
    rc = _as_run_config(cfg)
    values = dict(rc.solver)
    cls = get_solver_class(values.pop("name"))
    with pytest.raises(ConfigError, match="stepz.*allowed keys: steps"):
        cls(2, values)


def test_programmatic_config_is_validated_too():
    with pytest.raises(ConfigError, match="unknown key"):
        _as_run_config({"sed": 1})
