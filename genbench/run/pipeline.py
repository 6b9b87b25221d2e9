"""One job of a sweep: ``run(cfg, output_dir) -> dict``, free of Hydra globals.

The CLI, every launcher and the tests call this same function. It validates the whole
configuration before building anything, trains the solver on the shared encoder-decoder's
latents, scores held-out samples with the harness, and writes ``results.json`` (atomically)
with the generated samples and the fitted solver beside it (``model.pt``,
:mod:`genbench.run.checkpoint`: ``genbench-eval`` re-samples it without retraining). A job
that fails records its error in its ``results.json`` instead of raising, so a sweep never
loses the other jobs' results; with ``resume`` a job whose successful result exists is
skipped, and a failing re-run of a finished job never replaces its result
(:func:`write_result`).
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
from typing import Any, NamedTuple

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from genbench.codecs.base import AutoencoderConfig
from genbench.codecs.cache import check_fittable, source_of
from genbench.core.config import ConfigError, RunConfig, check_name, is_result_neutral, validate
from genbench.core.solver import Solver, get_solver_class
from genbench.core.storage import atomic_json_dump, read_json
from genbench.run.checkpoint import save_checkpoint
from genbench.run.files import FAILED_RESULTS_FILE, MODEL_FILE, RESULTS_FILE, SAMPLES_FILE
from genbench.run.scoring import Inputs, draw, load_inputs, score
from genbench.run.tracking import make_tracker, run_name

__all__ = ["FAILED_RESULTS_FILE", "MODEL_FILE", "RESULTS_FILE", "SAMPLES_FILE", "Job",
           "environment", "existing_result", "failed_result", "finish_job", "job_header",
           "prepare_job",
           "resolve_device", "run", "write_result"]

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
    return validate(RunConfig, cfg, what="run config")


def run(cfg: RunConfig | DictConfig | Mapping[str, Any], output_dir: str | Path, *,
        variant: str | None = None) -> dict[str, Any]:
    """Run one job and return its result (also written to ``output_dir/results.json``).

    ``variant`` (the CLI passes the job's Hydra overrides) names the job's tracking run.
    """
    out = Path(output_dir)
    header: dict[str, Any] = {"started": datetime.now(timezone.utc).isoformat(),
                              "output_dir": str(out)}
    tracker = None
    try:
        rc = _as_run_config(cfg)
        header |= job_header(rc)
        plan = _preflight(rc)  # every check that needs no data: before any work
        previous = existing_result(rc, out, header)
        if previous is not None:
            return previous
        tracker = make_tracker(rc.logger, config=asdict(rc), name=run_name(rc, variant),
                               output_dir=out)
        result = header | _run(rc, out, tracker, plan, variant)
        result["status"] = "ok"
    except Exception as err:
        result = failed_result(header, err)
    return write_result(result, out, tracker)


def job_header(rc: RunConfig) -> dict[str, Any]:
    """The fields every result starts with: what ran, with which config."""
    return {"solver": rc.solver.get("name"), "dataset": rc.dataset.get("name"),
            "autoencoder": rc.autoencoder.get("name"), "seed": rc.seed, "config": asdict(rc)}


def existing_result(rc: RunConfig, out: Path, header: dict[str, Any]) -> dict[str, Any] | None:
    """With ``resume``, the successful result of this same job already in ``out``, else None."""
    results_path = out / RESULTS_FILE
    previous = read_json(results_path)
    if rc.resume and previous is not None and previous.get("status") == "ok":
        if _same_job(previous.get("config"), header["config"]):
            log.info("result exists, skipping: %s", results_path)
            return previous | {"skipped": True}
        log.warning("%s holds a result for another config: running again", results_path)
    return None


def failed_result(header: dict[str, Any], err: BaseException) -> dict[str, Any]:
    """A job's result recording its error (the sweep keeps going)."""
    log.error("job failed: %s: %s", type(err).__name__, err)
    result = header | {"status": "failed", "error_type": type(err).__name__,
                       "error": str(err),
                       "traceback": "".join(traceback.format_exception(err))}
    if torch.cuda.is_available():  # an out-of-memory job must not starve the next one
        torch.cuda.empty_cache()
    return result


def write_result(result: dict[str, Any], out: Path, tracker: Any = None) -> dict[str, Any]:
    """Stamp and write a job's result atomically, never replacing a finished one with a
    failure; then close the tracker.

    A failure of a job whose folder holds a successful ``results.json`` (a ``resume=false``
    re-run) goes to ``results.failed.json`` beside it; the report lists it. A success
    removes a stale ``results.failed.json``. A folder that cannot be written is logged, naming
    the file, and the result returned marked ``"saved": false`` instead of raising.
    """
    result.setdefault("finished", datetime.now(timezone.utc).isoformat())
    try:
        result = _write_protected(result, out)
    finally:
        if tracker is not None:
            tracker.finish(result)
    return result


def _write_protected(result: dict[str, Any], out: Path) -> dict[str, Any]:
    results_path, failed_path = out / RESULTS_FILE, out / FAILED_RESULTS_FILE
    target = results_path
    if result.get("status") != "ok":
        previous = read_json(results_path)
        if previous is not None and previous.get("status") == "ok":
            target = failed_path
            result = result | {"kept_result": str(results_path)}
            log.warning("the finished result %s is kept; this run's failure is in %s",
                        results_path, failed_path)
    try:
        atomic_json_dump(result, target)
        if target == results_path and result.get("status") == "ok":
            failed_path.unlink(missing_ok=True)
    except OSError as err:
        log.error("cannot write %s: %s", target, err.strerror or err)
        return result | {"saved": False, "save_error": f"cannot write {target}: "
                                                      f"{err.strerror or err}"}
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


def _same_job(saved: Any, current: dict[str, Any]) -> bool:
    """Whether a saved result was produced by the configuration about to run."""
    if not isinstance(saved, dict):  # an ill-typed results.json is no result
        return False
    current = json.loads(json.dumps(current, default=str))
    return _result_defining(saved) == _result_defining(current)


def _peak_memory(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process, and peak allocated GPU memory on CUDA (MiB)."""
    peak = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        peak["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peak


class Plan(NamedTuple):
    """What the preflight settled: the solver, its validated config (budget applied) and the
    budget's record."""

    solver_name: str
    solver_cls: type[Solver]
    hparams: Any
    budget: dict[str, Any]


def _preflight(rc: RunConfig) -> Plan:
    """Validate what can be checked without data: names, solver, encoder settings."""
    solver_cfg = dict(rc.solver)
    solver_name = solver_cfg.pop("name", None)
    if not solver_name:
        raise ConfigError("solver.name is missing; choose a solver, e.g. solver=ddpm")
    for key, value in (("solver.name", solver_name), ("dataset.name", rc.dataset.get("name")),
                       ("autoencoder.name", rc.autoencoder.get("name"))):
        if value is not None:
            check_name(key, value)
    solver_cls = get_solver_class(solver_name)
    hparams = validate(solver_cls.Config, solver_cfg, what=f"solver {solver_name!r}")
    ae_cfg = validate(AutoencoderConfig, rc.autoencoder, what="autoencoder")
    source, size_key = source_of(ae_cfg, rc.dataset)
    if "n_train" in source:
        check_fittable(ae_cfg, int(source["n_train"]), size_key)
    hparams, budget = _apply_budget(solver_cls, hparams, rc)
    resolve_device(rc.device)
    return Plan(solver_name, solver_cls, hparams, budget)


class Job(NamedTuple):
    """A job's inputs up to training: data, encoder-decoder, latents and the built solver."""

    inputs: Inputs
    z_train: Tensor
    solver: Any
    solver_name: str
    budget: dict[str, Any]

    @property
    def device(self) -> torch.device:
        return self.inputs.device


def prepare_job(rc: RunConfig, plan: Plan | None = None) -> Job:
    """Everything before ``fit``, seeded as a solo run seeds it (data, then the solver)."""
    solver_name, solver_cls, hparams, budget = plan if plan is not None else _preflight(rc)
    device = resolve_device(rc.device)

    inputs = load_inputs(rc, device)
    z_train = inputs.ae.encode(inputs.splits.train.to(device))

    torch.manual_seed(rc.seed)
    solver = solver_cls(inputs.ae.latent_dim, hparams).to(device)
    return Job(inputs, z_train, solver, solver_name, budget)


def _run(rc: RunConfig, out: Path, tracker: Any, plan: Plan,
         variant: str | None = None) -> dict[str, Any]:
    job = prepare_job(rc, plan)
    train_stats = job.solver.fit(job.z_train, callback=tracker.log_train, progress=rc.progress)
    return finish_job(rc, out, tracker, job, train_stats, variant)


def finish_job(rc: RunConfig, out: Path, tracker: Any, job: Job, train_stats: dict[str, Any],
               variant: str | None = None) -> dict[str, Any]:
    """Everything after ``fit``: checkpoint, sample, score, save the samples; the result's
    body."""
    solver, inputs, device = job.solver, job.inputs, job.device
    save_checkpoint(solver, out / MODEL_FILE, solver_name=job.solver_name,
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
        "budget": job.budget,
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
