"""Config composition with Hydra's compose API: every group option, schema errors, and the
one list of result-neutral keys."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from genbench.codecs import AutoencoderConfig
from genbench.core.config import (
    RESULT_NEUTRAL_KEYS,
    ConfigError,
    EvalConfig,
    LoggerConfig,
    RunConfig,
    is_result_neutral,
)
from genbench.core.solver import get_solver_class, list_solvers
from genbench.data import DatasetConfig, build_dataset, dataset_params
from genbench.run.pipeline import _as_run_config, _same_job, run
from genbench.sweep.jobs import Job
from genbench.sweep.schemas import check_overrides, group_options, register_schemas
from tests.conftest import CONFIG_DIR

register_schemas()


def compose_run(overrides: list[str], hydra_section: bool = False):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides,
                       return_hydra_config=hydra_section)


def options(group: str) -> list[str]:
    """A group's options: the registered dataclasses, or the YAML files (presets)."""
    registered = group_options().get(group)
    if registered is not None:
        return sorted(registered)
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def defaults(schema: type) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(schema))


def test_default_config_composes_and_validates():
    cfg = compose_run([])
    rc = _as_run_config(cfg)
    assert rc.solver["name"] == "ddpm" and rc.dataset["name"] == "moons"
    assert rc.device == "auto"
    # the composed group nodes carry their dataclass types; the run config holds plain dicts
    partial = _as_run_config({k: v for k, v in cfg.items()})
    assert all(type(getattr(partial, g)) is dict for g in ("solver", "dataset", "autoencoder"))


@pytest.mark.parametrize("option", options("dataset"))
def test_every_dataset_option(option, tmp_path):
    extra = []
    if option == "file":  # the user's own data needs its path
        np.save(tmp_path / "own.npy", np.random.default_rng(0).normal(size=(300, 3)))
        extra = [f"dataset.path={tmp_path / 'own.npy'}"]
    cfg = compose_run([f"dataset={option}", "dataset.n_train=50", *extra])
    ds = OmegaConf.to_container(cfg.dataset)
    assert ds["name"] == option
    keys = {f.name for f in dataclasses.fields(DatasetConfig)}
    keys |= {f.name for f in dataclasses.fields(dataset_params(option))}
    assert set(ds) == keys, "every dataset option holds its dataclasses' keys"
    build_dataset(ds | {"n_test": min(ds["n_test"], 100)}, seed=0)  # validates every key


@pytest.mark.parametrize("option", options("autoencoder"))
def test_every_autoencoder_option(option):
    cfg = compose_run([f"autoencoder={option}"])
    values = OmegaConf.to_container(cfg.autoencoder)
    assert set(values) == {f.name for f in dataclasses.fields(AutoencoderConfig)}
    assert values["name"] == option
    AutoencoderConfig(**values)


@pytest.mark.parametrize("option", options("solver"))
def test_every_solver_option_is_its_config_dataclass(option):
    cfg = compose_run([f"solver={option}"])
    values = OmegaConf.to_container(cfg.solver)
    assert values.pop("name") == option
    cls = get_solver_class(option)
    assert values == defaults(cls.Config), "solver=NAME gives the dataclass defaults"
    cls(2, values)


def test_every_registered_solver_is_an_option():
    assert options("solver") == list_solvers()
    assert not (CONFIG_DIR / "solver").exists(), "solver defaults live in the dataclasses"


def test_a_users_yaml_option_extends_a_registered_one(tmp_path):
    (tmp_path / "solver").mkdir()
    (tmp_path / "solver" / "ddpm_fast.yaml").write_text(
        "defaults:\n  - /solver/ddpm@_here_\n  - _self_\n\nsample_steps: 100\n")
    cfg = compose_run([f"hydra.searchpath=[file://{tmp_path}]", "solver=ddpm_fast"])
    values = OmegaConf.to_container(cfg.solver)
    assert values == defaults(get_solver_class("ddpm").Config) | {"name": "ddpm",
                                                                  "sample_steps": 100}


def test_eval_and_logger_options_are_their_dataclasses():
    assert options("eval") == ["default"] and options("logger") == ["none", "wandb"]
    cfg = compose_run([])
    assert OmegaConf.to_object(cfg.eval) == EvalConfig()
    assert OmegaConf.to_object(cfg.logger) == LoggerConfig()
    assert OmegaConf.to_object(compose_run(["logger=wandb"]).logger) == LoggerConfig(
        name="wandb")


def _schema_of(group: str, name: str) -> dict:
    schema = group_options()[group][name]
    return defaults(schema) | {"name": name}


@pytest.mark.parametrize("path", sorted(p.relative_to(CONFIG_DIR) for p in CONFIG_DIR.glob(
    "*/*.yaml") if p.parent.name in group_options()), ids=str)
def test_yaml_options_keep_only_what_differs_from_the_dataclass(path):
    group, name = path.parent.name, path.stem
    text = yaml.safe_load((CONFIG_DIR / path).read_text())
    assert text.pop("defaults") == [f"/schema/{group}/{name}@_here_", "_self_"]
    assert text.pop("name") == name
    schema = _schema_of(group, name)
    for key, value in text.items():
        assert key in schema and schema[key] != value, f"{path}: {key} repeats the default"
    composed = OmegaConf.to_container(compose_run([f"{group}={name}"])[group])
    assert composed == schema | text


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


@pytest.mark.parametrize("override", ["seed=abc", "eval.max_exact=lots", "solver.steps=abc",
                                      "solver=cfm solver.coupling=[1]", "dataset.n_train=x",
                                      "autoencoder.latent_dim=two", "logger.tags=3"])
def test_wrong_type_fails_at_composition_naming_the_key(override):
    overrides = override.split()
    key = overrides[-1].split("=")[0]
    with pytest.raises(ConfigCompositionException) as err:
        compose_run(overrides)
    assert key in f"{err.value} {err.value.__cause__}"


@pytest.mark.parametrize("override", ["eval.max_exat=3", "logger.projct=x", "autoencoder.dim=2"])
def test_misspelt_key_of_a_closed_group_fails_at_composition(override):
    with pytest.raises(ConfigCompositionException, match=override.split("=")[0]):
        compose_run([override])


def test_key_of_another_solver_fails_only_the_job(tmp_path):
    """lsb has no sample_steps: composition passes, the job fails before any work."""
    cfg = compose_run(["solver=lsb", "solver.sample_steps=20"])
    result = run(cfg, tmp_path)
    assert result["status"] == "failed" and result["error_type"] == "ConfigError"
    assert "['sample_steps']" in result["error"] and "sde_steps" in result["error"]
    assert not (tmp_path / "samples.npz").exists()


def test_misspelt_solver_key_names_key_and_allowed_ones():
    cfg = compose_run(["+solver.stepz=3"])
    rc = _as_run_config(cfg)
    values = dict(rc.solver)
    cls = get_solver_class(values.pop("name"))
    with pytest.raises(ConfigError, match="stepz.*allowed keys: steps"):
        cls(2, values)


def test_command_line_key_that_no_option_has_fails_before_composition():
    check_overrides(["solver.sample_steps=20", "dataset.dim=3", "~solver.sample_steps",
                     "-m", "--cfg", "job", "seed=1,2", "solver=glob(*)", "+solver.name=x"])
    with pytest.raises(ConfigError, match="'solver.sampel_steps'.*sample_steps"):
        check_overrides(["solver.sampel_steps=20"])
    with pytest.raises(ConfigError, match="no dataset has 'dimm'"):
        check_overrides(["dataset=gmm,moons", "dataset.dimm=3"])


def test_programmatic_config_is_validated_too():
    with pytest.raises(ConfigError, match="unknown key"):
        _as_run_config({"sed": 1})


# -- the one list of result-neutral keys ---------------------------------------------------


def test_override_dirname_excludes_exactly_the_result_neutral_keys():
    excluded = compose_run([], hydra_section=True).hydra.job.config.override_dirname.exclude_keys
    excluded = set(excluded)
    assert all(is_result_neutral(k) for k in excluded), "an excluded key changes results"
    # every spelling of a neutral key a user types: root leaves, group choices and their
    # fields; of Hydra's own keys, the sweep folder and the launcher's parallelism
    expected = {"hydra.sweep.dir", "hydra.launcher.n_jobs", "launcher"}
    for key in RESULT_NEUTRAL_KEYS:
        if key == "logger":
            expected |= {"logger"} | {f"logger.{f.name}" for f in dataclasses.fields(LoggerConfig)}
        elif not key.startswith(("hydra", "launcher")):
            expected.add(key)
    assert excluded == expected


def test_resume_and_variants_ignore_exactly_the_result_neutral_keys(tmp_path):
    base = dataclasses.asdict(_as_run_config(compose_run([])))
    neutral = dict(base, device="cpu", resume=False, progress=False, cache_dir="/elsewhere",
                   logger=dict(base["logger"], name="wandb", mode="online"),
                   eval=dict(base["eval"], plot=False))
    assert _same_job(base, neutral)
    for key, value in [("seed", 1), ("solver", dict(base["solver"], lr=0.1)),
                       ("eval", dict(base["eval"], seed=3))]:
        assert not _same_job(base, dict(base, **{key: value})), key
    params = Job.read(tmp_path, {"status": "ok", "config": neutral}).params
    assert "solver.lr" in params and "eval.seed" in params
    assert not [k for k in params if is_result_neutral(k) or k in ("seed", "solver.name")]
