"""One job of a sweep: ``run(cfg, output_dir) -> dict``, free of Hydra globals.

The CLI, every launcher and the tests call this same function. It validates the whole
configuration before building anything, trains the solver on the shared encoder-decoder's
latents, scores held-out samples with the harness, and writes ``results.json`` (atomically)
with the generated samples beside it. A job that fails records its error in its
``results.json`` instead of raising, so a sweep never loses the other jobs' results; with
``resume`` a job whose successful result exists is skipped, and a failing re-run of a
finished job never replaces its result (:func:`write_result`).
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
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from genbench.codecs.autoencoder import AutoencoderConfig
from genbench.codecs.cache import check_fittable, get_autoencoder, source_of
from genbench.core.config import ConfigError, RunConfig, check_name, validate
from genbench.core.registry import get_solver_class
from genbench.data import build_dataset
from genbench.eval.harness import Evaluation
from genbench.run.files import FAILED_RESULTS_FILE, RESULTS_FILE, SAMPLES_FILE
from genbench.run.storage import atomic_json_dump, atomic_npz_save, read_json
from genbench.run.tracking import make_tracker, run_name

__all__ = ["FAILED_RESULTS_FILE", "RESULTS_FILE", "SAMPLES_FILE", "resolve_device", "run",
           "write_result"]

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
    results_path = out / RESULTS_FILE
    header: dict[str, Any] = {"started": datetime.now(timezone.utc).isoformat(),
                              "output_dir": str(out)}
    tracker = None
    try:
        rc = _as_run_config(cfg)
        header |= {"solver": rc.solver.get("name"), "dataset": rc.dataset.get("name"),
                   "autoencoder": rc.autoencoder.get("name"), "seed": rc.seed,
                   "config": asdict(rc)}
        plan = _preflight(rc)  # every check that needs no data: before any work
        previous = read_json(results_path)
        if rc.resume and previous is not None and previous.get("status") == "ok":
            if _same_job(previous.get("config"), header["config"]):
                log.info("result exists, skipping: %s", results_path)
                return previous | {"skipped": True}
            log.warning("%s holds a result for another config: running again", results_path)
        tracker = make_tracker(rc.logger, config=asdict(rc), name=run_name(rc), output_dir=out)
        result = header | _run(rc, out, tracker, *plan)
        result["status"] = "ok"
    except Exception as err:
        log.error("job failed: %s: %s", type(err).__name__, err)
        result = header | {"status": "failed", "error_type": type(err).__name__,
                           "error": str(err), "traceback": traceback.format_exc()}
        if torch.cuda.is_available():  # an out-of-memory job must not starve the next one
            torch.cuda.empty_cache()
    result["finished"] = datetime.now(timezone.utc).isoformat()
    try:
        result = write_result(result, out)
    finally:
        if tracker is not None:
            tracker.finish(result)
    return result


def write_result(result: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write a job's result, never replacing a finished one with a failure.

    A failure of a job whose folder holds a successful ``results.json`` (a ``resume=false``
    re-run) goes to ``results.failed.json`` beside it; the report lists it. A success
    removes a stale ``results.failed.json``. A folder that cannot be written is logged, naming
    the file, and the result returned marked ``"saved": false`` instead of raising.
    """
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


# Settings that do not change a job's numbers: a result is reused whatever their values.
_NOT_RESULT_KEYS = ("resume", "progress", "device", "logger", "cache_dir")


def _same_job(saved: Any, current: dict[str, Any]) -> bool:
    """Whether a saved result was produced by the configuration about to run."""
    if not isinstance(saved, dict):  # an ill-typed results.json is no result
        return False
    def strip(cfg: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in cfg.items() if k not in _NOT_RESULT_KEYS}

    return strip(saved) == strip(json.loads(json.dumps(current, default=str)))


def _peak_memory(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process, and peak allocated GPU memory on CUDA (MiB)."""
    peak = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        peak["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peak


def _preflight(rc: RunConfig) -> tuple[type, Any]:
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
    resolve_device(rc.device)
    return solver_cls, hparams


def _run(rc: RunConfig, out: Path, tracker: Any, solver_cls: type,
         hparams: Any) -> dict[str, Any]:
    device = resolve_device(rc.device)

    torch.manual_seed(rc.seed)
    np.random.seed(rc.seed)
    splits = build_dataset(rc.dataset, seed=rc.seed)
    ae, ae_info = get_autoencoder(rc.autoencoder, rc.dataset, rc.cache_dir, device)
    z_train = ae.encode(splits.train.to(device))

    torch.manual_seed(rc.seed)
    solver = solver_cls(ae.latent_dim, hparams).to(device)
    train_stats = solver.fit(z_train, callback=tracker.log_train, progress=rc.progress)

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
        "autoencoder_info": ae_info,
        "device": str(device),
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "host": platform.node()},
    }
