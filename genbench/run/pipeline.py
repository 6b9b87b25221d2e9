"""One job of a sweep: ``run(cfg, output_dir) -> dict``, free of Hydra globals.

The CLI, every launcher and the tests call this same function. It validates the whole
configuration before building anything, trains the solver on the shared encoder-decoder's
latents, scores held-out samples with the harness, and writes ``results.json`` (atomically)
with the generated samples beside it. A job that fails records its error in its
``results.json`` instead of raising, so a sweep never loses the other jobs' results; with
``resume`` a job whose successful result exists is skipped.
"""

from __future__ import annotations

import json
import logging
import platform
import resource
import time
import traceback
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from genbench.codecs.autoencoder import get_autoencoder
from genbench.core.config import RunConfig, validate
from genbench.core.registry import get_solver_class
from genbench.data import build_dataset
from genbench.eval.harness import Evaluation
from genbench.run.files import RESULTS_FILE, SAMPLES_FILE
from genbench.run.storage import atomic_json_dump, atomic_npz_save, read_json
from genbench.run.tracking import make_tracker, run_name

__all__ = ["RESULTS_FILE", "SAMPLES_FILE", "Job", "existing_result", "failed_result",
           "finish_job", "job_header", "prepare_job", "resolve_device", "run", "write_result"]

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


def run(cfg: RunConfig | DictConfig | Mapping[str, Any], output_dir: str | Path) -> dict[str, Any]:
    """Run one job and return its result (also written to ``output_dir/results.json``)."""
    out = Path(output_dir)
    header: dict[str, Any] = {"started": datetime.now(timezone.utc).isoformat(),
                              "output_dir": str(out)}
    tracker = None
    try:
        rc = _as_run_config(cfg)
        header |= job_header(rc)
        previous = existing_result(rc, out, header)
        if previous is not None:
            return previous
        tracker = make_tracker(rc.logger, config=asdict(rc), name=run_name(rc), output_dir=out)
        result = header | _run(rc, out, tracker)
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
        if _same_job(previous.get("config", {}), header["config"]):
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


def write_result(result: dict[str, Any], out: Path, tracker: Any) -> dict[str, Any]:
    """Stamp, write ``results.json`` atomically and close the tracker."""
    result["finished"] = datetime.now(timezone.utc).isoformat()
    try:
        atomic_json_dump(result, out / RESULTS_FILE)
    finally:
        if tracker is not None:
            tracker.finish(result)
    return result


# Settings that do not change a job's numbers: a result is reused whatever their values.
_NOT_RESULT_KEYS = ("resume", "progress", "device", "logger", "cache_dir", "batch_seeds")
# Solver settings that change the speed only (the OT plan's worker yields the same pairs).
_NOT_RESULT_SOLVER_KEYS = ("ot_prefetch",)


def _same_job(saved: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether a saved result was produced by the configuration about to run."""
    def strip(cfg: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in cfg.items() if k not in _NOT_RESULT_KEYS}
        if isinstance(out.get("solver"), dict):
            out["solver"] = {k: v for k, v in out["solver"].items()
                             if k not in _NOT_RESULT_SOLVER_KEYS}
        return out

    return strip(saved) == strip(json.loads(json.dumps(current, default=str)))


def _peak_memory(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process, and peak allocated GPU memory on CUDA (MiB)."""
    peak = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        peak["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peak


class Job(NamedTuple):
    """A job's inputs up to training: data, encoder-decoder, latents and the built solver."""

    splits: Any
    ae: Any
    ae_info: dict[str, Any]
    z_train: Tensor
    solver: Any
    device: torch.device


def prepare_job(rc: RunConfig) -> Job:
    """Everything before ``fit``, seeded as a solo run seeds it (data, then the solver)."""
    solver_cfg = dict(rc.solver)
    solver_name = solver_cfg.pop("name", None)
    if not solver_name:
        raise ValueError("solver.name is missing; choose a solver, e.g. solver=ddpm")
    solver_cls = get_solver_class(solver_name)
    hparams = validate(solver_cls.Config, solver_cfg, what=f"solver {solver_name!r}")
    device = resolve_device(rc.device)

    torch.manual_seed(rc.seed)
    np.random.seed(rc.seed)
    splits = build_dataset(rc.dataset, seed=rc.seed)
    ae, ae_info = get_autoencoder(rc.autoencoder, rc.dataset, rc.cache_dir, device)
    z_train = ae.encode(splits.train.to(device))

    torch.manual_seed(rc.seed)
    solver = solver_cls(ae.latent_dim, hparams).to(device)
    return Job(splits, ae, ae_info, z_train, solver, device)


def _run(rc: RunConfig, out: Path, tracker: Any) -> dict[str, Any]:
    job = prepare_job(rc)
    train_stats = job.solver.fit(job.z_train, callback=tracker.log_train, progress=rc.progress)
    return finish_job(rc, out, tracker, job, train_stats)


def finish_job(rc: RunConfig, out: Path, tracker: Any, job: Job,
               train_stats: dict[str, Any]) -> dict[str, Any]:
    """Everything after ``fit``: sample, score, save the samples; the result's body."""
    solver, splits, ae, device = job.solver, job.splits, job.ae, job.device
    generator = torch.Generator(device=device).manual_seed(rc.seed)
    n_eval = len(splits.test)
    start = time.perf_counter()
    z_gen = solver.sample(n_eval, generator=generator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    sample_seconds = time.perf_counter() - start
    x_gen = ae.decode(z_gen)

    evaluate = Evaluation(rc.eval, cache_dir=rc.cache_dir)
    metrics = evaluate(x_gen=x_gen, z_gen=z_gen, splits=splits, ae=ae, solver=solver)
    atomic_npz_save(out / SAMPLES_FILE, x_gen=x_gen, z_gen=z_gen, x_test=splits.test,
                    z_test=ae.encode(splits.test.to(device)))
    metrics |= {"nfe": solver.nfe, "train_seconds": train_stats["train_seconds"],
                "sample_seconds": sample_seconds, "n_eval": n_eval,
                "n_train": len(splits.train), "latent_dim": ae.latent_dim,
                "final_loss": train_stats["final_loss"], **_peak_memory(device)}
    figures = {}
    if rc.eval.plot:
        from genbench.run.plots import scatter_samples

        figures["samples"] = scatter_samples(x_gen, splits.test, out / "samples.png",
                                             title=run_name(rc))
    tracker.log_summary(metrics, figures)
    return {
        "metrics": metrics,
        "train": {k: v for k, v in train_stats.items() if k != "train_seconds"},
        "autoencoder_info": job.ae_info,
        "device": str(device),
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "host": platform.node()},
    }
