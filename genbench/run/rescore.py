"""Re-sample and re-score a finished job from its checkpoint, without retraining.

``rescore(RUN_DIR, ["solver.sample_steps=20"])`` loads ``RUN_DIR/model.pt``, applies the
overrides (only the solver's sampling keys, ``eval.*`` and settings that never change a
result), draws with the job's own sampler generator seeding and scores through the same
harness, writing ``RUN_DIR/eval/<overrides>/results.json`` in the job's schema. Its
``train_seconds`` is the original job's, marked ``train_reused``; the leaderboard reads it as
one more variant of the job (an NFE sweep: one training, one row per NFE). With the same
seed the numbers equal those of a fresh job trained with those sampler settings.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from genbench.core.budget import BudgetConfig
from genbench.core.config import (
    RESULT_NEUTRAL_KEYS,
    ConfigError,
    RunConfig,
    is_result_neutral,
    validate,
)
from genbench.core.solver import get_solver_class
from genbench.core.storage import read_json
from genbench.run.checkpoint import check_sampling_overrides, load_solver, read_checkpoint
from genbench.run.files import MODEL_FILE, RESULTS_FILE
from genbench.run.pipeline import environment, resolve_device, write_result
from genbench.run.scoring import draw, load_inputs, score
from genbench.run.tracking import make_tracker, run_name

__all__ = ["EVAL_DIR", "parse_overrides", "rescore", "variant_name"]

log = logging.getLogger(__name__)
EVAL_DIR = "eval"


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["a.b=1", ...]`` as a flat ``{"a.b": 1}`` (values parsed as YAML, like Hydra's)."""
    flat: dict[str, Any] = {}
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep or not key or key.startswith(("+", "~")):
            raise ConfigError(f"override {item!r} must read key=value (e.g. "
                              "solver.sample_steps=20)")
        value = OmegaConf.to_container(OmegaConf.from_dotlist([item]))
        for part in key.split("."):
            value = value[part]
        flat[key] = value
    return flat


def variant_name(overrides: Sequence[str]) -> str:
    """The folder name of a re-scored variant: its overrides, sorted (``default`` if none)."""
    items = sorted(o.replace("/", "_") for o in overrides)
    return ",".join(items) or "default"


def _check(solver_cls: Any, flat: Mapping[str, Any]) -> dict[str, Any]:
    """The solver overrides of ``flat``; refuses any key that changes training."""
    solver_keys = {}
    for key, value in flat.items():
        head, _, rest = key.partition(".")
        if head == "solver" and rest:
            solver_keys[rest] = value
        elif head != "eval" and not is_result_neutral(key):
            raise ConfigError(
                f"{key} changes the trained model or its data: re-scoring can change only "
                "the solver's sampling keys, eval.*, and the result-neutral keys "
                f"({', '.join(RESULT_NEUTRAL_KEYS)}). "
                "To change training, run genbench again.")
    check_sampling_overrides(solver_cls, solver_keys)
    return solver_keys


def _budget_as_solver_keys(solver_cls: Any, payload: Mapping[str, Any],
                           flat: Mapping[str, Any]) -> dict[str, Any]:
    """``budget.nfe=N`` re-samples at N network calls: the solver's own sampling keys, mapped
    by its ``apply_budget`` (:mod:`genbench.core.budget`) from the checkpoint's config."""
    flat = dict(flat)
    if "budget.nfe" not in flat:
        return flat
    nfe = flat.pop("budget.nfe")
    config = validate(solver_cls.Config, payload["config"], what=f"solver {payload['name']!r}")
    overrides = solver_cls.apply_budget(config, validate(BudgetConfig, {"nfe": nfe},
                                                         what="budget"))
    return flat | {f"solver.{key}": value for key, value in overrides.items()}


def _merge(config: dict[str, Any], flat: Mapping[str, Any]) -> dict[str, Any]:
    merged = OmegaConf.create(config)
    for key, value in flat.items():
        OmegaConf.update(merged, key, value, force_add=True)
    return OmegaConf.to_container(merged)  # type: ignore[return-value]


def rescore(run_dir: str | Path, overrides: Sequence[str] = (), *,
            out_dir: str | Path | None = None) -> dict[str, Any]:
    """Re-sample and re-score the job in ``run_dir``; returns the new result (also on disk).

    Bad overrides, a missing checkpoint or a failed original raise before any work; an
    error while sampling or scoring is recorded in the new ``results.json`` (status
    ``failed``), as a job records it.
    """
    run_dir = Path(run_dir)
    original = read_json(run_dir / RESULTS_FILE)
    if original is None:
        raise FileNotFoundError(f"no readable {RESULTS_FILE} in {run_dir}: pass a job's folder")
    if original.get("status") != "ok":
        raise ValueError(f"the job in {run_dir} did not finish ({original.get('status')}): "
                         "nothing to re-score")
    payload = read_checkpoint(run_dir / MODEL_FILE)
    solver_cls = get_solver_class(payload["name"])
    flat = parse_overrides(overrides)
    mapped = _budget_as_solver_keys(solver_cls, payload, flat)
    solver_overrides = _check(solver_cls, mapped)
    budget = {k: v for k, v in flat.items() if k == "budget.nfe"}  # recorded with its mapping
    rc = validate(RunConfig, _merge(original["config"], mapped | budget),
                  what="the re-scored run config")
    name = variant_name(overrides)
    out = Path(out_dir) if out_dir is not None else run_dir / EVAL_DIR / name
    header: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(), "output_dir": str(out),
        "solver": original.get("solver"), "dataset": original.get("dataset"),
        "autoencoder": original.get("autoencoder"), "seed": rc.seed, "config": asdict(rc),
        "rescored_from": {"run_dir": str(run_dir), "overrides": list(overrides)},
    }
    title = run_name(rc, ",".join(overrides))
    tracker = make_tracker(rc.logger, config=asdict(rc), name=title, output_dir=out)
    try:
        result = header | _rescore(rc, payload, solver_overrides, original, out, tracker, title)
        result["status"] = "ok"
    except Exception as err:
        log.error("re-scoring failed: %s: %s", type(err).__name__, err)
        result = header | {"status": "failed", "error_type": type(err).__name__,
                           "error": str(err), "traceback": traceback.format_exc()}
    result["finished"] = datetime.now(timezone.utc).isoformat()
    try:
        result = write_result(result, out)  # a failure never replaces a finished re-score
    finally:
        tracker.finish(result)
    return result


def _rescore(rc: RunConfig, payload: Mapping[str, Any], solver_overrides: Mapping[str, Any],
             original: Mapping[str, Any], out: Path, tracker: Any,
             title: str) -> dict[str, Any]:
    device = resolve_device(rc.device)
    inputs = load_inputs(rc, device)
    key = payload.get("autoencoder_key")
    if key is not None and inputs.ae_info.get("key") != key:
        raise ConfigError(f"the encoder-decoder changed since training (cache key "
                          f"{inputs.ae_info.get('key')}, checkpoint {key}): cannot re-score")
    solver = load_solver(payload, solver_overrides, device)
    x_gen, z_gen, sample_seconds = draw(rc, solver, inputs)
    metrics, figures = score(rc, inputs, out, x_gen=x_gen, z_gen=z_gen, solver=solver,
                             title=title)
    before = original.get("metrics", {})
    metrics |= {"nfe": solver.nfe, "train_seconds": before.get("train_seconds"),
                "train_reused": True, "sample_seconds": sample_seconds,
                "train_steps": before.get("train_steps"),
                "n_eval": len(inputs.splits.test), "n_train": len(inputs.splits.train),
                "latent_dim": inputs.ae.latent_dim, "final_loss": before.get("final_loss")}
    tracker.log_summary(metrics, figures)
    return {"metrics": metrics, "train": original.get("train", {}),
            "autoencoder_info": inputs.ae_info, "device": str(device),
            "environment": environment()}
