"""``genbench-eval``: re-score a finished job, or score samples made by any generator.

    genbench-eval RUN_DIR solver.sample_steps=20 [eval.KEY=VALUE ...] [--out DIR]
    genbench-eval RUN_DIR solver.sample_steps=10,20,50      (an NFE sweep, one training)
    genbench-eval --samples FILE dataset=moons [autoencoder=pca] [eval.KEY=VALUE ...]
                  [--name NAME] [--key ARRAY] [--out DIR]

The first form reloads ``RUN_DIR/model.pt`` and re-samples with other sampling keys (no
retraining; :mod:`genbench.run.rescore`), writing ``RUN_DIR/eval/<overrides>/results.json``;
a comma list (Hydra's sweep syntax) re-scores each combination in turn.
The second scores an ``(n, d)`` array in data space against a data set composed from the
packaged configs (:mod:`genbench.run.external`), writing
``outputs/eval/<name>-<dataset>-s<seed>/results.json`` unless ``--out`` is given. Both
write the job's schema, so ``genbench-report`` lists them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["SAMPLE_MODE_KEYS", "compose_run_config", "expand_sweeps", "main"]

log = logging.getLogger("genbench.eval")
# What --samples accepts: the target, its encoder, the harness and settings (no solver).
# ``experiment`` presets may set solver keys too: those are ignored (the samples are the solver).
SAMPLE_MODE_KEYS = ("dataset", "autoencoder", "eval", "experiment", "seed", "device",
                    "progress", "cache_dir")


def compose_run_config(overrides: Sequence[str]) -> Any:
    """The validated :class:`RunConfig` of the packaged configs with ``overrides`` (Hydra's
    compose API, as in the README)."""
    from hydra import compose, initialize_config_dir, initialize_config_module

    from genbench.core.config import RunConfig, validate
    from genbench.sweep.cli import CONFIG_PATH
    from genbench.sweep.schemas import register_schemas

    register_schemas()
    if CONFIG_PATH.startswith("pkg://"):
        context = initialize_config_module(CONFIG_PATH.removeprefix("pkg://"),
                                           version_base="1.3")
    else:
        context = initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3")
    with context:
        cfg = compose(config_name="config", overrides=list(overrides))
    from omegaconf import OmegaConf

    values = OmegaConf.to_container(cfg, resolve=True)
    return validate(RunConfig, values, what="run config")


def _check_sample_overrides(overrides: Sequence[str]) -> None:
    from genbench.core.config import ConfigError

    for item in overrides:
        key = item.lstrip("+~").partition("=")[0]
        if key.split(".")[0] not in SAMPLE_MODE_KEYS:
            raise ConfigError(
                f"{item!r}: scoring samples takes only {', '.join(SAMPLE_MODE_KEYS)} "
                "(and their keys, e.g. dataset=moons dataset.n_test=2000); the samples are "
                "the solver")


def _parser() -> argparse.ArgumentParser:
    from genbench import __version__

    parser = argparse.ArgumentParser(
        prog="genbench-eval", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Overrides read key=value, as on the genbench command line.")
    parser.add_argument("args", nargs="*", metavar="RUN_DIR|KEY=VALUE",
                        help="a finished job's folder then overrides, or (--samples) overrides")
    parser.add_argument("--samples", type=Path, metavar="FILE",
                        help="score this (n, d) array (.npy, .npz, .pt) in data space")
    parser.add_argument("--name", help="solver name of the samples (default: the file stem)")
    parser.add_argument("--key", help="the array of an .npz or .pt file (default: x_gen, or "
                                      "its only array)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where results.json goes")
    parser.add_argument("--version", action="version", version=f"genbench {__version__}")
    return parser


def expand_sweeps(overrides: Sequence[str]) -> list[list[str]]:
    """Every combination of the choice and range sweeps in ``overrides`` (Hydra's syntax:
    ``solver.sample_steps=10,20`` or ``range(...)``), as lists of ``key=value``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    combos: list[list[str]] = [[]]
    for item, override in zip(overrides,
                              OverridesParser.create().parse_overrides(list(overrides)),
                              strict=True):
        if override.is_sweep_override():
            key = item.partition("=")[0]
            values = [f"{key}={v}" for v in override.sweep_string_iterator()]
        else:
            values = [item]
        combos = [combo + [value] for combo in combos for value in values]
    return combos


def _run(ns: argparse.Namespace) -> list[dict[str, Any]]:
    if ns.samples is not None:
        from genbench.run.external import score_external

        _check_sample_overrides(ns.args)
        rc = compose_run_config(ns.args)
        name = ns.name or ns.samples.stem
        out = ns.out or Path("outputs") / "eval" / f"{name}-{rc.dataset.get('name')}-s{rc.seed}"
        return [score_external(rc, ns.samples, out, name=name, key=ns.key)]
    if not ns.args or "=" in ns.args[0]:
        raise SystemExit("genbench-eval: give a finished job's folder (RUN_DIR) or --samples "
                         "FILE; see genbench-eval --help")
    from genbench.run.rescore import rescore

    combos = expand_sweeps(ns.args[1:])
    if ns.out is not None and len(combos) > 1:
        raise SystemExit("genbench-eval: --out takes one result; a sweep writes each into "
                         "RUN_DIR/eval/<overrides>/")
    return [rescore(ns.args[0], combo, out_dir=ns.out) for combo in combos]


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point; exits 1 when the evaluation fails, 2 on bad arguments."""
    ns = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(name)s][%(levelname)s] - %(message)s")
    from hydra.errors import HydraException

    from genbench.core.config import ConfigError
    from genbench.core.solver import DataError

    try:
        results = _run(ns)
    except (ConfigError, DataError, FileNotFoundError, ValueError, HydraException) as err:
        print(f"genbench-eval: error: {err}", file=sys.stderr)
        sys.exit(2)
    from genbench.sweep.lines import job_line

    for result in results:
        print(job_line(result), flush=True)
        print(f"  results: {Path(result['output_dir']) / 'results.json'}", flush=True)
    if any(result.get("status") != "ok" for result in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
