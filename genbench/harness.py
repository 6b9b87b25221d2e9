"""The evaluation harness: the one place metrics are chosen and combined.

Every distance is reported beside its *floor*: the same distance between the test points and
an independent reference sample of the same size from the target. ``ratio = value / floor``
reads the same at every sample size and dimension; 1 means indistinguishable from the target
at this sample size. The end-to-end error is split into the encoder-decoder's part
(reconstruction), the generator's part (latent) and the total (data), mirroring the latent
Schrödinger bridge paper's bound.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor

from genbench.config import EvalConfig
from genbench.metrics.w2 import w2
from genbench.storage import atomic_json_dump, read_json

if TYPE_CHECKING:
    from genbench.autoencoder import AutoEncoder
    from genbench.data import DataSplits
    from genbench.solver import Solver

__all__ = ["Evaluation", "floor_w2", "w2_with_floor"]


def _fingerprint(*arrays: Tensor, extra: dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a.detach().cpu().numpy()).tobytes())
    return h.hexdigest()[:20]


def _w2_kwargs(cfg: EvalConfig) -> dict[str, Any]:
    return {"max_exact": cfg.max_exact, "large_n_method": cfg.large_n_method,
            "reg": cfg.sinkhorn_reg,
            "n_projections": cfg.sliced_projections}


def floor_w2(test: Tensor, reference: Tensor, cfg: EvalConfig,
             cache_dir: str | Path | None = None) -> float:
    """W2 between two independent target samples; cached on disk by their content."""
    path = None
    if cache_dir is not None:
        key = _fingerprint(test, reference, extra=_w2_kwargs(cfg))
        path = Path(cache_dir).expanduser() / "floors" / f"w2-{key}.json"
        cached = read_json(path)
        if cached is not None:
            return float(cached["w2"])
    value, method = w2(test, reference, **_w2_kwargs(cfg))
    if path is not None:
        atomic_json_dump({"w2": value, "method": method, "n": len(test)}, path)
    return value


def w2_with_floor(gen: Tensor, test: Tensor, reference: Tensor, cfg: EvalConfig,
                  prefix: str, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """``{prefix}_w2``, ``_floor``, ``_ratio`` and ``_method`` for generated vs test points."""
    value, method = w2(gen, test, **_w2_kwargs(cfg))
    floor = floor_w2(test, reference, cfg, cache_dir)
    return {f"{prefix}_w2": value, f"{prefix}_w2_floor": floor,
            f"{prefix}_w2_ratio": value / floor if floor > 0 else float("nan"),
            f"{prefix}_w2_method": method}


class Evaluation:
    """Scores one solver's samples against the target, in latent and data space."""

    def __init__(self, cfg: EvalConfig, cache_dir: str | Path | None = None):
        self.cfg, self.cache_dir = cfg, cache_dir

    def __call__(
        self,
        *,
        x_gen: Tensor,
        z_gen: Tensor,
        splits: DataSplits,
        ae: AutoEncoder,
        solver: Solver,
    ) -> dict[str, Any]:
        """Score generated latents ``z_gen`` and their decodings ``x_gen`` on held-out data."""
        start = time.perf_counter()
        cfg = self.cfg
        device = z_gen.device
        x_test, x_ref = splits.test.to(device), splits.reference.to(device)
        z_test, z_ref = ae.encode(x_test), ae.encode(x_ref)
        out: dict[str, Any] = {}
        out |= w2_with_floor(x_gen, x_test, x_ref, cfg, "data", self.cache_dir)
        out |= w2_with_floor(z_gen, z_test, z_ref, cfg, "latent", self.cache_dir)
        out["recon_w2"], _ = w2(ae.decode(z_test), x_test, **_w2_kwargs(cfg))
        out["eval_seconds"] = time.perf_counter() - start
        return out
