"""Evaluation cost: W2 by method against sample size, and the on-disk cache of the floors.

Two independent moons samples of ``n`` points each are scored by :func:`genbench.eval.metrics.w2`
with ``method="exact"`` (POT's network simplex on the dense cost matrix, CPU), ``"sinkhorn"``
(debiased, log domain, POT's torch backend) and ``"sliced"`` (500 directions). The floor of a
data set (W2 between its test and reference splits) is computed by
:func:`genbench.eval.floors.floor_w2` and cached under ``cache_dir/floors``: a second call with
the same samples and settings must read the file instead of solving again.

References:
    Flamary et al., "POT: Python Optimal Transport", JMLR 2021.
    Feydy et al., "Interpolating between Optimal Transport and MMD using Sinkhorn
    Divergences", AISTATS 2019.
    Bonneel, Rabin, Peyré, Pfister, "Sliced and Radon Wasserstein Barycenters of Measures",
    JMIV 2015.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from perf_clock import Clock, ratio

__all__ = ["EvalBudget", "run_eval"]


@dataclass
class EvalBudget:
    exact_sizes: tuple[int, ...] = (1000, 2000, 4000, 8000, 10000)  # up to max_exact
    sinkhorn_sizes: tuple[int, ...] = (1000, 2000)
    sliced_sizes: tuple[int, ...] = (1000, 2000, 4000, 8000, 20000)
    floor_n: int = 2000  # the default test size of every data set
    dataset: str = "moons"


def _samples(dataset: str, n: int) -> tuple[Any, Any]:
    from genbench.data import build_dataset

    splits = build_dataset({"name": dataset, "n_train": 1, "n_test": n}, seed=0)
    return splits.test, splits.reference


def _w2_timings(budget: EvalBudget, log: Any) -> list[dict[str, Any]]:
    from genbench.eval.metrics.w2 import w2

    rows = []
    for method, sizes in (("exact", budget.exact_sizes), ("sinkhorn", budget.sinkhorn_sizes),
                          ("sliced", budget.sliced_sizes)):
        for n in sizes:
            x, y = _samples(budget.dataset, n)
            with warnings.catch_warnings(), Clock() as clock:
                warnings.simplefilter("ignore")
                value, _ = w2(x, y, method=method)
            rows.append({"method": method, "n": n, "w2": value, "wall_s": clock.wall,
                         "cpu_s": clock.cpu,
                         "cost_matrix_mib": n * n * 8 / 2**20 if method != "sliced" else None})
            log(f"[eval] {method} W2 n={n}: {clock.cpu:.2f} s cpu (W2 {value:.4f})")
    return rows


def _floor_cache(budget: EvalBudget, log: Any) -> dict[str, Any]:
    """Miss then hit of :func:`genbench.eval.floors.floor_w2` in a fresh cache folder."""
    from genbench.core.config import EvalConfig
    from genbench.eval.floors import floor_w2

    test, reference = _samples(budget.dataset, budget.floor_n)
    cfg = EvalConfig()
    with tempfile.TemporaryDirectory() as cache:
        with Clock() as miss:
            first = floor_w2(test, reference, cfg, cache)
        files = sorted(p.name for p in (Path(cache) / "floors").glob("*.json"))
        with Clock() as hit:
            second = floor_w2(test, reference, cfg, cache)
        perturbed = reference.clone()
        perturbed[0, 0] += 1e-3  # other content: must miss, not reuse the cached floor
        with Clock() as other:
            third = floor_w2(test, perturbed, cfg, cache)
        n_files = len(list((Path(cache) / "floors").glob("*.json")))
    out = {"n": budget.floor_n, "miss_cpu_s": miss.cpu, "miss_wall_s": miss.wall,
           "hit_cpu_s": hit.cpu, "hit_wall_s": hit.wall, "speedup_cpu": ratio(miss.cpu, hit.cpu),
           "files_after_first_call": files, "same_value_on_hit": first == second,
           "other_content_new_file": n_files == 2, "other_content_cpu_s": other.cpu,
           "other_content_value": third}
    log(f"[eval] floor n={budget.floor_n}: miss {miss.cpu:.3f} s, hit {hit.cpu:.4f} s cpu, "
        f"files {files}, same value {first == second}")
    return out


def run_eval(budget: EvalBudget, log: Any = print) -> dict[str, Any]:
    return {"budget": asdict(budget), "w2": _w2_timings(budget, log),
            "floor_cache": _floor_cache(budget, log)}
