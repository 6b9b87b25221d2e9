"""The ``genbench`` command: a Hydra app around :func:`genbench.run.pipeline.run`.

Configs are read from the checkout's ``configs/`` folder when run from a checkout, else
from the installed package ``genbench_configs``; every group's options are registered from
the dataclasses when this module loads (:mod:`genbench.sweep.schemas`), plugins included.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from genbench.core.config import ConfigError
from genbench.eval.verdict import describe
from genbench.run.pipeline import run
from genbench.sweep.schemas import CONFIG_PATH, check_overrides, register_schemas

__all__ = ["CONFIG_PATH", "format_result", "main"]

log = logging.getLogger("genbench")

register_schemas()


def format_result(result: dict[str, Any]) -> str:
    """A short table of one job's result (or its error)."""
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
def _app(cfg: DictConfig) -> dict[str, Any]:
    hc = HydraConfig.get()
    result = run(cfg, hc.runtime.output_dir, variant=hc.job.override_dirname)
    print(format_result(result) if not result.get("skipped")
          else f"skipped (result exists): {hc.runtime.output_dir}", flush=True)
    if result.get("status") != "ok" and hc.mode == RunMode.RUN:
        sys.exit(1)
    return result


def main() -> None:
    """Console entry point (``genbench --version`` prints the version; the rest is Hydra's)."""
    from genbench.sweep.callback import missing_launcher_hint

    if sys.argv[1:] in (["--version"], ["-V"]):
        from genbench import __version__

        print(f"genbench {__version__}")
        return
    hint = missing_launcher_hint(sys.argv[1:])
    if hint is not None:
        sys.exit(hint)
    try:
        check_overrides(sys.argv[1:])
    except ConfigError as err:
        sys.exit(f"genbench: {err}")
    _app()


if __name__ == "__main__":
    main()
