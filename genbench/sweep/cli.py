"""The ``genbench`` command: a Hydra app around :func:`genbench.run.pipeline.run`.

Configs are read from the checkout's ``configs/`` folder when run from a checkout, else
from the installed package ``genbench_configs``; every group's options are registered from
the dataclasses when this module loads (:mod:`genbench.sweep.schemas`), plugins included.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from genbench.core.config import ConfigError, check_name
from genbench.eval.verdict import describe
from genbench.run.pipeline import run
from genbench.sweep.schemas import CONFIG_PATH, check_overrides, register_schemas
from genbench.sweep.seed_groups import run_in_group
from genbench.sweep.tune import is_tuning, objective

__all__ = ["CONFIG_PATH", "check_name_overrides", "check_output_folder", "format_result", "main"]

log = logging.getLogger("genbench")

register_schemas()


def format_result(result: dict[str, Any]) -> str:
    """A short table of one job's result (or its error)."""
    if result.get("solver") is None:  # the config failed validation before naming its parts
        title = "genbench job"
    else:
        title = f"{result.get('solver')} on {result.get('dataset')} (seed {result.get('seed')})"
    if result.get("status") != "ok":
        return f"{title}: FAILED: {result.get('error_type')}: {result.get('error')}"
    m = result["metrics"]
    rows = [("W2 data", "data_w2"), ("W2 latent", "latent_w2"), ("TV data", "data_tv"),
            ("TV latent", "latent_tv"), ("MMD data", "data_mmd")]
    lines = [title, f"  {'metric':<12}{'value':>10}{'floor':>10}{'ratio':>8}  method"]
    for label, key in rows:
        value, floor = m.get(key), m.get(f"{key}_floor")
        if value is None:
            continue
        ratio = m.get(f"{key}_ratio")
        ratio = ratio if ratio is not None else (value / floor if floor else float("nan"))
        method = m.get(f"{key}_method") or ""
        lines.append(f"  {label:<12}{value:>10.4f}{floor:>10.4f}{ratio:>8.2f}  {method}")
    if m.get("data_tv_mc") is not None:
        lo, hi = m.get("data_tv_mc_ci") or (float("nan"), float("nan"))
        lines.append(f"  TV (exact densities, Monte-Carlo) {m['data_tv_mc']:.4f} "
                     f"[{lo:.4f}, {hi:.4f}]")
    if m.get("nll") is not None:
        target = m.get("nll_floor")
        target = f"{target:.3f}" if target is not None else "unknown"
        lines.append(f"  NLL {m['nll']:.3f} ({m.get('nll_space')} space; target's own {target})")
    lines += [f"  {line}" for line in describe(m)]
    lines.append(f"  recon W2 {m['recon_w2']:.4f} | NFE {m['nfe']} | "
                 f"train {m['train_seconds']:.1f}s | sample {m['sample_seconds']:.2f}s | "
                 f"eval {m.get('eval_seconds', float('nan')):.1f}s")
    lines.append(f"  results: {Path(result['output_dir']) / 'results.json'}")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")
def _app(cfg: DictConfig) -> dict[str, Any] | float:
    """One job; returns its result, or its scalar objective under a tuning sweeper (Optuna)."""
    hc = HydraConfig.get()
    result = run_in_group(cfg, hc.runtime.output_dir)  # seeds trained together (batch_seeds)
    if result is None:
        if cfg.get("batch_seeds") and hc.mode == RunMode.MULTIRUN:
            log.info("batch_seeds: this job trains its seed alone (seeds train together with "
                     "launcher=local, in jobs that differ only by seed)")
        result = run(cfg, hc.runtime.output_dir, variant=hc.job.override_dirname)
    print(format_result(result) if not result.get("skipped")
          else f"skipped (result exists): {hc.runtime.output_dir}", flush=True)
    if result.get("saved") is False:
        print(f"genbench: {result['save_error']}", file=sys.stderr, flush=True)
    if (result.get("status") != "ok" or result.get("saved") is False) and hc.mode == RunMode.RUN:
        sys.exit(1)
    if is_tuning(hc):
        return objective(result)
    return result


# Overrides whose values name folders and files (checked again in run(), for API callers).
_NAME_KEYS = ("solver.name", "dataset.name", "autoencoder.name")


def check_name_overrides(overrides: list[str]) -> str | None:
    """An error message when an override puts a path (``/``, ``..``) into a name.

    Checked before Hydra starts, because Hydra creates the job's folder (named after these
    values) before the job can validate them.
    """
    for item in overrides:
        key, _, value = item.lstrip("+~").partition("=")
        if key in _NAME_KEYS:
            for one in value.split(","):  # a sweep's values
                try:
                    check_name(key, one.strip())
                except ConfigError as err:
                    return f"genbench: {err}"
    return None


def check_output_folder(argv: list[str]) -> str | None:
    """An error message when the run or sweep folder cannot be written.

    Hydra writes ``multirun.yaml`` and each job's ``.hydra/`` before any job runs, and a
    read-only folder would end there in a traceback. Checks the folder named on the command
    line (``hydra.sweep.dir=`` / ``hydra.run.dir=``), else the working directory, at its
    nearest existing ancestor.
    """
    multirun = any(a in ("-m", "--multirun") for a in argv)
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    named = [a.partition("=")[2] for a in argv if a.startswith(key + "=")]
    folder = Path(named[-1] if named and "${" not in named[-1] else ".").expanduser().absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        what = f"{key}={named[-1]}" if named else "the working directory"
        return (f"genbench: cannot write into {folder} ({what}): permission denied; "
                f"choose a writable folder with {key}=...")
    return None


def main() -> None:
    """Console entry point (``genbench --version`` prints the version; the rest is Hydra's)."""
    from genbench.sweep.callback import LAST_MULTIRUN, missing_launcher_hint

    if sys.argv[1:] in (["--version"], ["-V"]):
        from genbench import __version__

        print(f"genbench {__version__}")
        return
    hint = (missing_launcher_hint(sys.argv[1:]) or check_name_overrides(sys.argv[1:])
            or check_output_folder(sys.argv[1:]))
    if hint is not None:
        sys.exit(hint)
    try:
        check_overrides(sys.argv[1:])
    except ConfigError as err:
        sys.exit(f"genbench: {err}")
    LAST_MULTIRUN.clear()
    _app()
    failed = LAST_MULTIRUN.get("failed")
    if failed:  # one line, then a non-zero exit: scripts and CI see the sweep was not clean
        sys.exit(f"genbench: {len(failed)} of {LAST_MULTIRUN['total']} jobs failed in "
                 f"{LAST_MULTIRUN['sweep_dir']} (first: {failed[0]}); see its report/")


if __name__ == "__main__":
    main()
