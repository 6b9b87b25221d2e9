"""The rate study: power-law fits, theory exponents, the analysis command and its presets."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from genbench.core.config import EvalConfig
from genbench.report.rates import fit as rates_fit
from genbench.report.rates.fit import (
    empirical_measure_exponent,
    fit_power_law,
    memoriser_exponents,
    oko_tv_exponent,
    oko_w1_exponent,
    theory_exponents,
)
from genbench.report.rates.study import analyse, main
from genbench.run.pipeline import _as_run_config
from genbench.sweep.schemas import register_schemas

register_schemas()
ROOT = Path(__file__).resolve().parents[1]
SIZES = np.array([250, 500, 1000, 2000, 4000, 8000])


def power_law(slope: float, noise: float, seeds: int, rng: np.random.Generator):
    n = np.repeat(SIZES, seeds)
    return n, 3.0 * n**slope * np.exp(noise * rng.standard_normal(n.size))


def test_fit_recovers_an_exact_power_law():
    n, values = power_law(-0.37, 0.0, 1, np.random.default_rng(0))
    fit = fit_power_law(n, values)
    assert fit.slope == pytest.approx(-0.37, abs=1e-10)
    assert np.exp(fit.intercept) * 1000.0**fit.slope == pytest.approx(3.0 * 1000**-0.37)
    assert fit.r2 == pytest.approx(1.0)


def test_fit_recovers_a_noisy_exponent_inside_its_interval():
    n, values = power_law(-0.25, 0.1, 4, np.random.default_rng(1))
    fit = fit_power_law(n, values)
    assert fit.slope == pytest.approx(-0.25, abs=0.05)
    assert fit.covers(-0.25) and not fit.covers(0.0)
    assert fit.n_points == n.size and fit.n_dropped == 0


def test_fit_interval_has_its_nominal_coverage():
    rng = np.random.default_rng(2)
    hits = [fit_power_law(*power_law(-0.5, 0.2, 2, rng), confidence=0.9).covers(-0.5)
            for _ in range(400)]
    assert 0.85 < np.mean(hits) < 0.95


def test_fit_drops_unloggable_values_and_needs_enough_points():
    n, values = power_law(-0.3, 0.0, 1, np.random.default_rng(0))
    values[0], values[1] = 0.0, math.nan
    fit = fit_power_law(n, values)
    assert fit.n_dropped == 2 and fit.slope == pytest.approx(-0.3)
    with pytest.raises(ValueError, match="at least 3 positive values"):
        fit_power_law([100, 100, 100], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="same length"):
        fit_power_law([1, 2, 3], [1.0, 2.0])


def test_theory_exponents():
    assert oko_tv_exponent(2, 2) == pytest.approx(-1 / 3)
    assert oko_tv_exponent(3, 4) == pytest.approx(-0.3)
    assert oko_w1_exponent(1, 2) == pytest.approx(-0.5)
    assert oko_w1_exponent(2, 6) == pytest.approx(-0.3)
    # Fournier-Guillin: W_p ~ n^(-1/d) for d > 2p, n^(-1/(2p)) (up to a log) below.
    assert empirical_measure_exponent(2, order=2) == pytest.approx(-0.25)
    assert empirical_measure_exponent(8, order=2) == pytest.approx(-0.125)
    assert empirical_measure_exponent(2, order=1) == pytest.approx(-0.5)
    assert empirical_measure_exponent(5, order=1) == pytest.approx(-0.2)
    # Each line only against the metric its theorem bounds; nothing sourced for W2.
    assert set(theory_exponents("data_tv", 2, 2)) == {"Oko TV -s/(2s+d), s=2"}
    assert set(theory_exponents("data_w1", 2, 2)) == {"Oko W1 -(s+1)/(2s+d), s=2"}
    assert theory_exponents("latent_w2", 4, 1) == {}
    assert memoriser_exponents("data_w2", 8) == {"Fournier-Guillin W2 -1/max(d,4)": -0.125}
    assert memoriser_exponents("data_w1", 8) == {"Fournier-Guillin W1 -1/max(d,2)": -0.125}
    assert memoriser_exponents("data_tv", 2) == {}
    with pytest.raises(ValueError, match="smoothness"):
        oko_tv_exponent(0, 2)
    with pytest.raises(ValueError, match="order"):
        empirical_measure_exponent(2, order=0)


@pytest.mark.parametrize(("function", "quotes"), [
    ("oko_tv_exponent", ("Oko, Akiyama, Suzuki", "ICML 2023", "OKO_ASSUMPTIONS", "training")),
    ("oko_w1_exponent", ("Oko, Akiyama, Suzuki", "ICML 2023", "OKO_ASSUMPTIONS", "training")),
    ("empirical_measure_exponent", ("Fournier, Guillin", "Theorem 1",
                                    "FOURNIER_GUILLIN_ASSUMPTIONS", "n^(-1/d)")),
])
def test_every_theory_line_quotes_its_source(function, quotes):
    doc = getattr(rates_fit, function).__doc__
    for quote in quotes:
        assert quote in doc, f"{function}'s docstring lacks {quote!r}"
    assert "Besov" in rates_fit.OKO_ASSUMPTIONS and "[-1, 1]^d" in rates_fit.OKO_ASSUMPTIONS
    assert "moment" in rates_fit.FOURNIER_GUILLIN_ASSUMPTIONS
    docs = (ROOT / "docs" / "rates.md").read_text()
    for source in ("Oko, Akiyama, Suzuki", "Fournier", "Theorem 1", "-(s+1)/(2s+d)"):
        assert source in docs
    # The unsourced latent-SB exponent is gone: named once, as removed, and never computed.
    assert docs.count("6(d*+3)") == 1 and "no source and was removed" in docs
    assert not hasattr(rates_fit, "latent_sb_w2_exponent")


# -- the analysis command on a synthetic sweep ----------------------------------------------
def write_job(root: Path, solver: str, n: int, seed: int, latent_dim: int, metrics: dict):
    folder = root / f"solver={solver},dataset.n_train={n},latent={latent_dim},seed={seed}"
    config = {"dataset": {"name": "moons", "n_train": n, "n_test": 2000},
              "autoencoder": {"name": "pca", "latent_dim": latent_dim},
              "solver": {"name": solver, "steps": 100}, "seed": seed}
    metrics = {"n_train": n, "latent_dim": latent_dim} | metrics
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(
        {"status": "ok", "solver": solver, "dataset": "moons", "seed": seed, "config": config,
         "metrics": metrics}))


def test_analysis_fits_the_sweep_slopes_and_draws_the_figure(tmp_path):
    rng = np.random.default_rng(3)
    for solver, slope in (("ddpm", -0.3), ("cfm", -0.5)):
        for n in SIZES[:5]:
            for seed in range(3):
                noise = math.exp(0.05 * rng.standard_normal())
                write_job(tmp_path, solver, int(n), seed, 2, {
                    "data_w2": 4 * n**slope * noise, "data_w2_floor": 0.05,
                    "data_w1": 3 * n**slope * noise, "data_w1_floor": 0.04,
                    "data_tv": 2 * n**-0.2 * noise, "data_tv_floor": 0.1,
                    "empirical_w2": 5 * n**-0.25, "empirical_w1": 4 * n**-0.5,
                    "empirical_tv": 3 * n**-0.4})
    paths = analyse(tmp_path, smoothness=2.0)
    assert paths["figure"].stat().st_size > 10_000
    rows = {(r["series"], r["metric"]): r
            for r in csv.DictReader(paths["csv"].open())}
    assert float(rows["ddpm", "data_w2"]["slope"]) == pytest.approx(-0.3, abs=0.03)
    assert float(rows["cfm", "data_w2"]["slope"]) == pytest.approx(-0.5, abs=0.03)
    assert float(rows["cfm", "data_tv"]["baseline_slope"]) == pytest.approx(-0.4, abs=1e-6)
    assert float(rows["cfm", "data_w1"]["slope"]) == pytest.approx(-0.5, abs=0.03)
    assert float(rows["cfm", "data_w1"]["baseline_slope"]) == pytest.approx(-0.5, abs=1e-6)
    assert float(rows["ddpm", "data_w1"]["theory: Oko W1 -(s+1)/(2s+d), s=2"]) == \
        pytest.approx(-0.5)
    assert float(rows["ddpm", "data_w2"]["memoriser theory: Fournier-Guillin W2 -1/max(d,4)"]) \
        == pytest.approx(-0.25)
    assert not any("theory: Oko" in k and v for k, v in rows["ddpm", "data_w2"].items())
    assert "memoriser slope" in paths["markdown"].read_text()


def test_analysis_of_a_latent_dimension_sweep(tmp_path, capsys):
    for d in (2, 4, 8):
        for seed in range(2):
            write_job(tmp_path, "ddpm", 2000, seed, d, {
                "data_w2": 1 / d + 0.1 * d, "recon_w2": 1 / d, "data_w2_floor": 0.1,
                "data_w2_ratio": (1 / d + 0.1 * d) / 0.1, "latent_w2_ratio": 1 + 0.1 * d,
                "data_tv": 0.2})
    assert main([str(tmp_path)]) == 0
    out = tmp_path / "rates"
    assert (out / "rates_latent_dim.png").is_file()
    text = (out / "rates_latent_dim.md").read_text()
    assert "recon_w2" in text and "| 8.0 |" in text.replace("| 8 |", "| 8.0 |")
    assert "rates_latent_dim.png" in capsys.readouterr().out


def test_dimension_study_splits_its_two_arms(tmp_path, capsys):
    for k, d in ((2, 16), (2, 64), (2, 128), (1, 64), (4, 64)):
        for n in (250, 1000):
            folder = tmp_path / f"k={k},D={d},n={n}"
            folder.mkdir()
            config = {"dataset": {"name": "manifold", "n_train": n, "intrinsic_dim": k,
                                  "ambient_dim": d},
                      "solver": {"name": "cfm"}, "seed": 0}
            ratio = 1 + k * 250 / n  # grows with d*, flat in D: the claim, made true here
            (folder / "results.json").write_text(json.dumps(
                {"status": "ok", "solver": "cfm", "dataset": "manifold", "seed": 0,
                 "config": config, "metrics": {"latent_w2_ratio": ratio,
                                               "data_w2_ratio": ratio + 0.1}}))
    assert main([str(tmp_path), "--x", "dims"]) == 0
    rows = list(csv.DictReader((tmp_path / "rates" / "rates_dims.csv").open()))
    assert len(rows) == 10
    at = {(int(r["d*"]), int(r["D"]), int(r["n"])): float(r["latent_w2_ratio"]) for r in rows}
    assert at[4, 64, 250] == pytest.approx(5.0) and at[2, 128, 1000] == pytest.approx(1.5)
    assert (tmp_path / "rates" / "rates_dims.png").stat().st_size > 10_000
    assert "rates_dims.md" in capsys.readouterr().out


def test_analysis_rejects_a_sweep_without_an_axis(tmp_path, capsys):
    write_job(tmp_path, "ddpm", 1000, 0, 2, {"data_w2": 0.3})
    write_job(tmp_path, "ddpm", 1000, 1, 2, {"data_w2": 0.3})
    assert main([str(tmp_path)]) == 2
    assert "nothing to fit" in capsys.readouterr().err


# -- the presets ----------------------------------------------------------------------------
def compose_run(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize(("experiment", "axis"), [("rates", "dataset.n_train"),
                                                  ("latent_dim", "autoencoder.latent_dim"),
                                                  ("dims", "dataset.ambient_dim")])
def test_study_presets_compose_validate_and_sweep(experiment, axis):
    cfg = compose_run([f"experiment={experiment}"])
    params = cfg.hydra.sweeper.params
    assert axis in params and "seed" in params
    rc = _as_run_config({k: v for k, v in cfg.items() if k != "hydra"})
    assert rc.autoencoder["n_source"] == 20000  # the encoder does not change with n
    for value in str(params[axis]).split(","):
        point = compose_run([f"experiment={experiment}", f"{axis}={value}"])
        _as_run_config({k: v for k, v in point.items() if k != "hydra"})


def test_the_harness_reads_every_eval_config_field():
    fields = {f.name: f.default for f in dataclasses.fields(EvalConfig)}
    harness = "".join((ROOT / "genbench" / "eval" / name).read_text()
                      for name in ("harness.py", "floors.py", "verdict.py", "draws.py"))
    pipeline = "".join((ROOT / "genbench" / "run" / f).read_text()
                       for f in ("pipeline.py", "scoring.py"))
    unused = [name for name in fields
              if f"cfg.{name}" not in harness and f"rc.eval.{name}" not in pipeline]
    assert not unused, f"EvalConfig fields accepted but never read: {unused}"
