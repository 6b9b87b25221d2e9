"""One job of a sweep: ``run(cfg, output_dir) -> dict``, free of Hydra globals.

The CLI, every launcher and the tests call this same function. It validates the whole
configuration before building anything, trains the solver on the shared encoder-decoder's
latents, scores held-out samples with the harness, and writes ``results.json`` (atomically)
with the generated samples and the fitted solver beside it (``model.pt``,
:mod:`genbench.run.checkpoint`: ``genbench-eval`` re-samples it without retraining). A job
that fails records its error in its ``results.json`` instead of raising, so a sweep never
loses the other jobs' results; with ``resume`` a job whose successful result exists is
skipped.
"""

from __future__ import annotations

import json
import logging
import platform
import resource
import traceback
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from genbench.core.config import RunConfig, is_result_neutral, validate
from genbench.core.solver import get_solver_class
from genbench.core.storage import atomic_json_dump, read_json
from genbench.run.checkpoint import save_checkpoint
from genbench.run.files import MODEL_FILE, RESULTS_FILE, SAMPLES_FILE
from genbench.run.scoring import draw, load_inputs, score
from genbench.run.tracking import make_tracker, run_name

__all__ = ["MODEL_FILE", "RESULTS_FILE", "SAMPLES_FILE", "environment", "resolve_device", "run"]

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; anything else must be a valid torch device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use auto or cpu")
    return device


def _as_run_config(cfg: RunConfig | DictConfig | Mapping[str, Any]) -> RunConfig:
    if isinstance(cfg, RunConfig):
        return cfg
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg = {k: v for k, v in dict(cfg).items() if k != "hydra"}
    return validate(RunConfig, cfg, what="the run config")


def run(cfg: RunConfig | DictConfig | Mapping[str, Any], output_dir: str | Path, *,
        variant: str | None = None) -> dict[str, Any]:
    """Run one job and return its result (also written to ``output_dir/results.json``).

    ``variant`` (the CLI passes the job's Hydra overrides) names the job's tracking run.
    """
    out = Path(output_dir)
    results_path = out / RESULTS_FILE
    header: dict[str, Any] = {"started": datetime.now(timezone.utc).isoformat(),
                              "output_dir": str(out)}
    tracker = None
    try:
        rc = _as_run_config(cfg)
        header |= {"solver": rc.solver.get("name"), "dataset": rc.dataset.get("name"),
                   "autoencoder": rc.autoencoder.get("name"), "seed": rc.seed,
                   "config": asdict(rc)}
        previous = read_json(results_path)
        if rc.resume and previous is not None and previous.get("status") == "ok":
            if _same_job(previous.get("config", {}), header["config"]):
                log.info("result exists, skipping: %s", results_path)
                return previous | {"skipped": True}
            log.warning("%s holds a result for another config: running again", results_path)
        tracker = make_tracker(rc.logger, config=asdict(rc), name=run_name(rc, variant),
                               output_dir=out)
        result = header | _run(rc, out, tracker, variant)
        result["status"] = "ok"
    except Exception as err:
        log.error("job failed: %s: %s", type(err).__name__, err)
        result = header | {"status": "failed", "error_type": type(err).__name__,
                           "error": str(err), "traceback": traceback.format_exc()}
        if torch.cuda.is_available():  # an out-of-memory job must not starve the next one
            torch.cuda.empty_cache()
    result["finished"] = datetime.now(timezone.utc).isoformat()
    try:
        atomic_json_dump(result, results_path)
    finally:
        if tracker is not None:
            tracker.finish(result)
    return result


def _result_defining(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The flattened config without its result-neutral keys (``RESULT_NEUTRAL_KEYS``)."""
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        path = f"{prefix}{key}"
        if is_result_neutral(path):
            continue
        if isinstance(value, dict) and value:
            flat |= _result_defining(value, f"{path}.")
        else:
            flat[path] = value
    return flat


def _same_job(saved: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether a saved result was produced by the configuration about to run."""
    current = json.loads(json.dumps(current, default=str))
    return _result_defining(saved) == _result_defining(current)


def _peak_memory(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process, and peak allocated GPU memory on CUDA (MiB)."""
    peak = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        peak["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peak


def _run(rc: RunConfig, out: Path, tracker: Any, variant: str | None = None) -> dict[str, Any]:
    solver_cfg = dict(rc.solver)
    solver_name = solver_cfg.pop("name", None)
    if not solver_name:
        raise ValueError("solver.name is missing; choose a solver, e.g. solver=ddpm")
    solver_cls = get_solver_class(solver_name)
    hparams = validate(solver_cls.Config, solver_cfg, what=f"solver {solver_name!r}")
    hparams, budget = _apply_budget(solver_cls, hparams, rc)
    device = resolve_device(rc.device)

    inputs = load_inputs(rc, device)
    z_train = inputs.ae.encode(inputs.splits.train.to(device))

    torch.manual_seed(rc.seed)
    solver = solver_cls(inputs.ae.latent_dim, hparams).to(device)
    train_stats = solver.fit(z_train, callback=tracker.log_train, progress=rc.progress)
    save_checkpoint(solver, out / MODEL_FILE, solver_name=solver_name,
                    autoencoder_key=inputs.ae_info.get("key"),
                    job={"dataset": rc.dataset, "autoencoder": rc.autoencoder, "seed": rc.seed})

    x_gen, z_gen, sample_seconds = draw(rc, solver, inputs)
    metrics, figures = score(rc, inputs, out, x_gen=x_gen, z_gen=z_gen, solver=solver,
                             title=run_name(rc, variant))
    metrics |= {"nfe": solver.nfe, "train_seconds": train_stats["train_seconds"],
                "sample_seconds": sample_seconds, "n_eval": len(inputs.splits.test),
                "n_train": len(inputs.splits.train), "latent_dim": inputs.ae.latent_dim,
                "final_loss": train_stats["final_loss"], **_peak_memory(device),
                "train_steps": train_stats.get("steps")}
    tracker.log_summary(metrics, figures)
    return {
        "metrics": metrics,
        "train": {k: v for k, v in train_stats.items() if k != "train_seconds"},
        "autoencoder_info": inputs.ae_info,
        "budget": budget,
        "device": str(device),
        "environment": environment(),
    }


def _apply_budget(solver_cls: type, hparams: Any, rc: RunConfig) -> tuple[Any, dict[str, Any]]:
    """The solver's config with ``rc.budget`` mapped onto its keys, and the record of it."""
    budget = rc.budget
    record: dict[str, Any] = {"train_steps": budget.train_steps, "nfe": budget.nfe,
                              "overrides": {}}
    if not budget.is_set:
        return hparams, record
    overrides = solver_cls.apply_budget(hparams, budget)
    if overrides:
        log.info("budget %s -> %s", {"train_steps": budget.train_steps, "nfe": budget.nfe},
                 ", ".join(f"solver.{k}={v}" for k, v in overrides.items()))
        hparams = validate(solver_cls.Config, asdict(hparams) | overrides,
                           what=f"solver {solver_cls.name!r} under budget")
    return hparams, record | {"overrides": overrides}


def environment() -> dict[str, str]:
    """Versions and host of the process that produced a result."""
    return {"python": platform.python_version(), "torch": torch.__version__,
            "host": platform.node()}
