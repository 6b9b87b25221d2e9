"""The ``genbench`` command: a Hydra app around :func:`genbench.pipeline.run`.

Configs are read from the checkout's ``configs/`` folder when run from a checkout, else
from the installed package ``genbench_configs``.
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

from genbench.config import register_schemas
from genbench.pipeline import run

__all__ = ["CONFIG_PATH", "format_result", "main"]

log = logging.getLogger("genbench")
_CHECKOUT_CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CONFIG_PATH = (str(_CHECKOUT_CONFIGS) if (_CHECKOUT_CONFIGS / "config.yaml").is_file()
               else "pkg://genbench_configs")

register_schemas()


def format_result(result: dict[str, Any]) -> str:
    """A short table of one job's result (or its error)."""
    title = f"{result.get('solver')} on {result.get('dataset')} (seed {result.get('seed')})"
    if result.get("status") != "ok":
        return f"{title}: FAILED: {result.get('error_type')}: {result.get('error')}"
    m = result["metrics"]
    rows = [
        ("W2 data", m["data_w2"], m["data_w2_floor"], m["data_w2_ratio"]),
        ("W2 latent", m["latent_w2"], m["latent_w2_floor"], m["latent_w2_ratio"]),
    ]
    lines = [title, f"  {'metric':<12}{'value':>10}{'floor':>10}{'ratio':>8}"]
    lines += [f"  {name:<12}{v:>10.4f}{f:>10.4f}{r:>8.2f}" for name, v, f, r in rows]
    lines.append(f"  recon W2 {m['recon_w2']:.4f} | NFE {m['nfe']} | "
                 f"train {m['train_seconds']:.1f}s | sample {m['sample_seconds']:.2f}s")
    lines.append(f"  results: {Path(result['output_dir']) / 'results.json'}")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")
def _app(cfg: DictConfig) -> dict[str, Any]:
    hc = HydraConfig.get()
    result = run(cfg, hc.runtime.output_dir)
    print(format_result(result) if not result.get("skipped")
          else f"skipped (result exists): {hc.runtime.output_dir}", flush=True)
    if result.get("status") != "ok" and hc.mode == RunMode.RUN:
        sys.exit(1)
    return result


def main() -> None:
    """Console entry point."""
    from genbench.callbacks import missing_launcher_hint

    hint = missing_launcher_hint(sys.argv[1:])
    if hint is not None:
        sys.exit(hint)
    _app()


if __name__ == "__main__":
    main()
