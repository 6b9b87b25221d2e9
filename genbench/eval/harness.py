"""The evaluation harness: the one place metrics are chosen and combined.

Every distance is reported beside its *floor*: the same distance between the test points and
an independent reference sample of the same size from the target. ``ratio = value / floor``
reads the same at every sample size and dimension; 1 means indistinguishable from the target
at this sample size. The end-to-end error is split into the encoder-decoder's part
(``recon_*``), the generator's part (``latent_*``) and the total (``data_*``), mirroring the
latent Schrödinger bridge paper's bound.

Keys of one result (``{space}`` is ``data`` or ``latent``):

- ``{space}_w2``, ``_w2_floor``, ``_w2_ratio``, ``_w2_method``: exact / Sinkhorn / sliced W2.
- ``{space}_w1``, ``_w1_floor``, ``_w1_ratio``, ``_w1_method``: exact W1 (Euclidean cost;
  sliced beyond ``max_exact``), the metric of Oko et al.'s W1 rate.
- ``{space}_tv``, ``_tv_floor``, ``_tv_method``, ``_tv_ci``: a *sample-based* TV
  (histogram for dimension <= ``tv_histogram_max_dim``, else classifier), chosen by the
  dimension alone so that every solver on one data set is scored by the same estimator.
- ``data_tv_mc``, ``data_tv_mc_ci``: the Monte-Carlo TV ``E_p[(1 - q/p)_+]``, only where the
  target density is known, the solver has one and the encoder is affine (``tv_monte_carlo``).
- ``{space}_mmd``, ``_mmd_floor``, ``_mmd_ratio``, ``_mmd_bandwidth``: RBF MMD, median rule.
- ``recon_w2`` (with the data floor and ratio beside it) and ``recon_rmse``.
- ``nll``, ``nll_space`` (``data`` where the encoder is affine, else ``latent``), ``nll_floor``
  (the target's own NLL where its density is known, data space only), ``nll_n``.
- ``empirical_w2``, ``empirical_w1``, ``empirical_tv`` (``empirical_baseline``): the training
  sample itself scored like a generator: the error of a memoriser, the rate study's baseline.
- ``eval_seconds`` and ``eval_seconds_by_metric``.
- With ``floor_draws`` > 0 (the default, 49): the W2 and MMD floors become the mean over that
  many reference draws, every headline score gets an interval, and the calibrated
  ``worse_than_reference`` verdict, precision/recall/density/coverage, the unbiased MMD^2,
  the cross-entropy and mode report, and the ``headline`` are added
  (:mod:`genbench.eval.verdict`, docs/verdicts.md).

Floors depend only on the target: they are cached on disk (``cache_dir/floors``) by the
content of the two samples and the estimator's settings.

References:
    Jiao, Kang, Lin, Liu, Zuo, "Latent Schrödinger Bridge Diffusion Model for Generative
    Learning", arXiv 2404.13309 (the end-to-end error decomposition).
    Fournier, Guillin, PTRF 2015 (the sample-noise floor of plug-in W2).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from genbench.core.config import EvalConfig
from genbench.core.progress import bar
from genbench.eval.floors import (
    mmd_with_floor,
    ratio,
    tv_settings,
    tv_with_floor,
    w1_settings,
    w1_with_floor,
    w2_settings,
    w2_with_floor,
)
from genbench.eval.metrics.tv import tv
from genbench.eval.metrics.w1 import w1
from genbench.eval.metrics.w2 import w2
from genbench.eval.verdict import verdict

if TYPE_CHECKING:
    from genbench.codecs import AutoEncoder
    from genbench.core.solver import Solver
    from genbench.data import DataSplits

__all__ = ["Evaluation", "model_log_density"]

log = logging.getLogger(__name__)
def model_log_density(solver: Solver, ae: AutoEncoder) -> tuple[Callable[[Tensor], Tensor], str]:
    """The solver's log-density as a function of *data* points, and the space it is exact in.

    Data space where the encoder is an invertible affine map (change of variables:
    ``log q_x(x) = log q_z(encode(x)) + log|det encode|``), latent space otherwise.
    """
    if ae.is_affine:
        log_det = ae.log_det_encode()
        return (lambda x: solver.log_prob(ae.encode(x)).double() + log_det), "data"
    return (lambda x: solver.log_prob(ae.encode(x)).double()), "latent"


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
        solver: Solver | None,
    ) -> dict[str, Any]:
        """Score generated latents ``z_gen`` and their decodings ``x_gen`` on held-out data.

        ``solver`` is ``None`` for samples made elsewhere (no density: no NLL)."""
        start = time.perf_counter()
        cfg, cache = self.cfg, self.cache_dir
        device = z_gen.device
        x_test, x_ref = splits.test.to(device), splits.reference.to(device)
        z_test, z_ref = ae.encode(x_test), ae.encode(x_ref)
        out: dict[str, Any] = {}
        seconds: dict[str, float] = {}
        has_density = solver is not None and solver.has_density
        phases = 9 + int(has_density) + int(cfg.empirical_baseline) + int(cfg.floor_draws > 0)
        progress = bar(phases, desc="evaluate", unit="metric")

        def timed(name: str, compute: Callable[..., dict[str, Any]], *args: Any) -> None:
            progress.set_postfix_str(name, refresh=False)
            tic = time.perf_counter()
            out.update(compute(*args))
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - tic
            progress.update(1)

        for space, gen, test, ref in (("data", x_gen, x_test, x_ref),
                                      ("latent", z_gen, z_test, z_ref)):
            timed("w2", w2_with_floor, gen, test, ref, cfg, space, cache)
            timed("w1", w1_with_floor, gen, test, ref, cfg, space, cache)
            timed("tv", tv_with_floor, gen, test, ref, cfg, space, cache)
            timed("mmd", mmd_with_floor, gen, test, ref, cfg, space, cache)
        if cfg.floor_draws:
            timed("verdict", self._verdict, x_gen, splits, ae, z_test, out)
        timed("w2", self._reconstruction, ae.decode(z_test), x_test, out["data_w2_floor"])
        out |= {"nll": None, "nll_space": None, "nll_floor": None, "data_tv_mc": None,
                "data_tv_mc_ci": None}
        if has_density:
            timed("density", self._density, splits, ae, solver, x_test)
        if cfg.empirical_baseline:
            timed("empirical", self._empirical, splits.train.to(device), x_test)
        progress.close()
        out["eval_seconds_by_metric"] = seconds
        out["eval_seconds"] = time.perf_counter() - start
        return out

    def _verdict(self, x_gen: Tensor, splits: DataSplits, ae: AutoEncoder, z_test: Tensor,
                 out: dict[str, Any]) -> dict[str, Any]:
        """Floors over ``floor_draws`` reference draws, intervals, the calibrated verdict and
        the headline (:mod:`genbench.eval.verdict`); replaces the one-draw W2 and MMD floors."""
        return verdict(x_gen, splits, self.cfg, self.cache_dir, w2_value=out["data_w2"],
                       latent=(ae.encode, z_test, out["latent_w2"], out["latent_mmd"]))

    def _reconstruction(self, x_recon: Tensor, x_test: Tensor, floor: float) -> dict[str, Any]:
        value, method = w2(x_recon, x_test, **w2_settings(self.cfg))
        rmse = float((x_recon - x_test).pow(2).sum(1).mean().sqrt())
        return {"recon_w2": value, "recon_w2_floor": floor, "recon_w2_ratio": ratio(value, floor),
                "recon_w2_method": method, "recon_rmse": rmse}

    def _density(self, splits: DataSplits, ae: AutoEncoder, solver: Solver,
                 x_test: Tensor) -> dict[str, Any]:
        """NLL of the test points and, where both densities are exact, the Monte-Carlo TV."""
        cfg = self.cfg
        points = x_test[: cfg.density_max_n]
        log_q, space = model_log_density(solver, ae)
        out: dict[str, Any] = {"nll": None, "nll_space": space, "nll_floor": None,
                               "nll_n": len(points)}
        try:
            log_q_test = log_q(points).detach()
        except Exception as err:  # a broken density must not cost the job its W2 and TV
            log.warning("solver log_prob failed, NLL skipped: %s: %s", type(err).__name__, err)
            return out | {"nll_error": f"{type(err).__name__}: {err}"}
        out["nll"] = float(-log_q_test.mean())
        target_log_p = splits.log_prob
        if space == "data" and target_log_p is not None:
            log_p_test = torch.as_tensor(target_log_p(points.cpu())).double()
            out["nll_floor"] = float(-log_p_test.mean())
            if cfg.tv_monte_carlo:
                try:
                    result = tv(None, points.cpu(), method="monte_carlo",
                                log_p=lambda _: log_p_test, log_q=lambda _: log_q_test.cpu(),
                                confidence=cfg.confidence)
                except ValueError as err:  # NaN densities: report, keep the job
                    return out | {"data_tv_mc_error": str(err)}
                out |= {"data_tv_mc": result.value, "data_tv_mc_ci": list(result.ci or ())}
        return out

    def _empirical(self, x_train: Tensor, x_test: Tensor) -> dict[str, Any]:
        """The training sample scored as if generated: what a memoriser would score."""
        value, method = w2(x_train, x_test, **w2_settings(self.cfg))
        value_w1, method_w1 = w1(x_train, x_test, **w1_settings(self.cfg))
        result = tv(x_train, x_test, **tv_settings(self.cfg))
        return {"empirical_w2": value, "empirical_w2_method": method,
                "empirical_w1": value_w1, "empirical_w1_method": method_w1,
                "empirical_tv": result.value, "empirical_tv_method": result.method}
