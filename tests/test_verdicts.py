"""Calibrated verdicts in the product: floors over reference draws with intervals, the rank
verdict, the headline per kind of data set, rank groups that call ties, the ladder's rows."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from genbench.core.config import EvalConfig
from genbench.data import build_dataset
from genbench.eval.stats import floor_ratio_interval, floor_summary
from genbench.eval.verdict import describe, reference_draws, verdict
from genbench.report import Leaderboard, write_report
from genbench.report.render import markdown, tables
from genbench.sweep.cli import format_result


def write_job(root: Path, solver: str, seed: int, ratio: float, *, noise_sd: float = 0.01,
              dataset: str = "gmm") -> None:
    folder = root / f"solver={solver},seed={seed},dataset={dataset}"
    folder.mkdir(parents=True)
    metrics = {"data_w2": ratio, "data_w2_floor": 1.0, "data_w2_ratio": ratio,
               "data_w2_ratio_low": ratio - 2 * noise_sd,
               "data_w2_ratio_high": ratio + 2 * noise_sd,
               "headline": "data_w2_ratio", "headline_value": ratio,
               "headline_noise_sd": noise_sd, "recon_w2": 0.0, "nfe": 1,
               "train_seconds": 1.0, "sample_seconds": 0.1}
    result = {"status": "ok", "solver": solver, "dataset": dataset, "seed": seed,
              "config": {"solver": {"name": solver}, "dataset": {"name": dataset},
                         "seed": seed, "logger": {"name": "none"}},
              "metrics": metrics}
    (folder / "results.json").write_text(json.dumps(result))


def board_of(tmp_path: Path, rows: dict[str, list[float]], noise_sd: float) -> Leaderboard:
    for solver, values in rows.items():
        for seed, value in enumerate(values):
            write_job(tmp_path, solver, seed, value, noise_sd=noise_sd)
    return Leaderboard.load(tmp_path)


def calls(board: Leaderboard) -> dict[str, object]:
    return {e.solver: e.call for e in board.entries}


def test_clear_gaps_make_strict_groups_and_the_csv_has_a_group_column(tmp_path):
    board = board_of(tmp_path, {"ddpm": [1.00, 1.01], "gaussian": [1.33, 1.34],
                                "collapse": [1.55, 1.56]}, noise_sd=0.01)
    c = calls(board)
    assert (c["ddpm"].group, c["gaussian"].group, c["collapse"].group) == (1, 2, 3)
    assert c["ddpm"].best and not c["gaussian"].best
    report = write_report(tmp_path)
    with open(report["leaderboard_csv"]) as fh:
        rows = {r["solver"]: r for r in csv.DictReader(fh)}
    assert {r["group"] for r in rows.values()} == {"1", "2", "3"}
    assert rows["ddpm"]["best"] == "True" and rows["gaussian"]["reference"] == "True"
    # Two seeds: the seed-mean interval is Student-t with 1 df around the mean.
    assert float(rows["ddpm"]["score_low"]) < 1.005 < float(rows["ddpm"]["score_high"])


def test_ties_are_called_ties_and_no_best_is_marked(tmp_path):
    # Gaps well inside the draw noise (sd 0.05): one group, no best, no highlighted row.
    board = board_of(tmp_path, {"a": [1.00, 1.02], "b": [1.01, 1.03], "c": [1.02, 1.00]},
                     noise_sd=0.05)
    c = calls(board)
    assert {c[k].group for k in "abc"} == {1}
    assert not any(c[k].best for k in "abc")
    (_, _, _, best), = [t for t in tables(board) if t[0] == "gmm"]
    assert best is None
    assert "best (significant)" not in markdown(board, {}, tmp_path)


def test_a_lead_inside_the_noise_is_not_a_best_even_when_ranked_first(tmp_path):
    # a leads b by 0.02 with draw sd 0.05: tied on top; c is far behind in its own group.
    board = board_of(tmp_path, {"a": [1.00, 1.00], "b": [1.02, 1.02], "c": [2.0, 2.0]},
                     noise_sd=0.05)
    c = calls(board)
    assert c["a"].group == c["b"].group == 1 and c["c"].group == 2
    assert not c["a"].best
    assert [e.solver for e in board.entries][:2] == ["a", "b"]  # ranked, but tied


def test_ladder_rows_are_references_and_real_solvers_not_better_than_gaussian_are_flagged(
        tmp_path):
    board = board_of(tmp_path, {"ddpm": [1.00, 1.01], "lsb": [1.33, 1.35],
                                "gaussian": [1.34, 1.33], "collapse": [1.55, 1.56]},
                     noise_sd=0.01)
    c = calls(board)
    assert c["gaussian"].reference and c["collapse"].reference and not c["ddpm"].reference
    assert c["ddpm"].not_better_than_gaussian is False
    assert c["lsb"].not_better_than_gaussian is True
    assert c["gaussian"].not_better_than_gaussian is None  # a reference is not judged
    text = markdown(board, {}, tmp_path)
    assert "not better than gaussian" in text and "reference (ladder)" in text


def _exact(splits, n: int, seed: int) -> torch.Tensor:
    return torch.as_tensor(splits.sampler(n, np.random.default_rng(seed)), dtype=torch.float32)


@pytest.fixture(scope="module")
def gmm():
    return build_dataset({"name": "gmm", "dim": 4, "n_test": 150, "n_train": 500}, seed=0)


def test_floor_draw_interval_is_the_prediction_interval_of_the_cached_draws(gmm, tmp_path):
    cfg = EvalConfig(floor_draws=49, bootstrap=200)
    exact = verdict(_exact(gmm, 150, 7), gmm, cfg, tmp_path)
    cached = list((tmp_path / "floors").glob("draws-*.json"))
    assert len(cached) == 1
    draws = json.loads(cached[0].read_text())["data_w2"]
    assert len(draws) == 49 and len(set(draws)) == 49  # independent draws, not copies
    f = floor_summary(draws)
    assert exact["data_w2_floor"] == pytest.approx(f.mean)
    assert exact["data_w2_floor_sd"] == pytest.approx(f.sd) and f.sd > 0
    iv = floor_ratio_interval(exact["data_w2"], draws)
    assert (exact["data_w2_ratio_low"], exact["data_w2_ratio_high"]) == pytest.approx(
        (iv.low, iv.high))
    assert exact["data_w2_ratio_low"] < 1 < exact["data_w2_ratio_high"]
    assert not exact["worse_than_reference"]
    # A second job reads the cache and gets the same floor.
    again = verdict(_exact(gmm, 150, 8), gmm, cfg, tmp_path)
    assert again["data_w2_floor"] == exact["data_w2_floor"]


def test_collapse_is_called_worse_with_its_interval_above_one(gmm, tmp_path):
    cfg = EvalConfig(floor_draws=49, bootstrap=200)
    x = gmm.train.mean(0) + 1e-3 * torch.randn(150, 4, generator=torch.Generator().manual_seed(0))
    out = verdict(x, gmm, cfg, tmp_path)
    assert out["data_w2_ratio_low"] > 1
    assert out["worse_than_reference_p"] == pytest.approx(1 / 50)
    assert out["worse_than_reference"]
    assert out["modes_found"] <= 1 and out["n_modes"] == 8
    assert out["data_recall"] < out["data_recall_floor"] - 3 * out["data_recall_floor_sd"]
    assert out["cross_entropy"] > out["target_entropy"]


def test_cross_entropy_of_an_exact_draw_brackets_the_target_entropy(gmm, tmp_path):
    out = verdict(_exact(gmm, 150, 3), gmm, EvalConfig(floor_draws=19, bootstrap=500), tmp_path)
    # The mixture's entropy by a large Monte-Carlo sample, an independent oracle.
    big = _exact(gmm, 200_000, 11)
    h = float(-gmm.log_prob(big).mean())
    assert out["cross_entropy_low"] < h < out["cross_entropy_high"]
    assert out["target_entropy"] == pytest.approx(h, abs=0.25)
    assert out["modes_found"] == 8


@pytest.mark.parametrize(("name", "params", "headline"), [
    ("gmm", {"dim": 2}, "data_mmd2"), ("moons", {}, "data_mmd2"),
    ("gmm", {"dim": 10}, "data_w2_ratio"), ("digits", {"n_test": 100}, "data_w2_ratio")])
def test_headline_per_kind_of_data_set(name, params, headline):
    splits = build_dataset({"name": name, "n_test": 100, "n_train": 400, **params}, seed=0)
    out = verdict(splits.train[:100], splits, EvalConfig(floor_draws=5, bootstrap=100))
    assert out["headline"] == headline
    assert out["headline_low"] <= out["headline_value"] <= out["headline_high"]


def test_finite_sets_are_resplit_without_the_test_points():
    splits = build_dataset({"name": "digits", "n_test": 100}, seed=0)
    test = {tuple(r) for r in splits.test.numpy().tolist()}
    draws = list(reference_draws(splits, 4))
    assert torch.equal(draws[0], splits.reference)
    for d in draws[1:]:
        assert d.shape == splits.test.shape
        assert not ({tuple(r) for r in d.numpy().tolist()} & test)
    assert not torch.equal(draws[1], draws[2])


def test_floor_draws_zero_keeps_the_single_floor_and_bad_keys_are_refused():
    assert EvalConfig(floor_draws=0).floor_draws == 0
    for bad in ({"floor_draws": 2}, {"headline": "tv"}, {"verdict_alpha": 1.5},
                {"mmd_permutations": 5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            EvalConfig(**bad)


def test_console_table_shows_the_headline_interval_and_the_verdict(gmm, tmp_path):
    m = verdict(_exact(gmm, 150, 5), gmm, EvalConfig(floor_draws=19, bootstrap=100), tmp_path)
    m |= {"recon_w2": 0.0, "nfe": 1, "train_seconds": 1.0, "sample_seconds": 0.1}
    text = format_result({"status": "ok", "solver": "x", "dataset": "gmm", "seed": 0,
                          "metrics": m, "output_dir": str(tmp_path)})
    assert "headline data_w2_ratio" in text and "worse than an exact reference draw? no" in text
    assert f"[{m['data_w2_ratio_low']:.4g}, {m['data_w2_ratio_high']:.4g}]" in text
    assert describe({}) == [] and not math.isnan(m["worse_than_reference_p"])


def test_no_verdict_when_the_sample_size_differs_from_n_test(gmm, tmp_path):
    out = verdict(_exact(gmm, 100, 4), gmm, EvalConfig(floor_draws=5, bootstrap=100), tmp_path)
    assert out["worse_than_reference"] is None and out["worse_than_reference_p"] is None
    assert "n_test" in out["verdict_error"]
    assert any(line.startswith("no verdict") for line in describe(out))


def _ladder_ranks(n_datasets: int, extra: dict[str, int] | None = None) -> dict:
    """A always 1st, B and C alternating 2nd/3rd, D always 4th, on ``n_datasets`` sets."""
    ranks: dict[str, dict[str, float]] = {k: {} for k in "ABCD"}
    for d in range(n_datasets):
        for name, rank in zip("ABCD", (1, 2 + d % 2, 3 - d % 2, 4), strict=True):
            ranks[name][f"set{d}"] = rank
    return ranks


def _holm_oracle(ranks: dict, k: int, n: int) -> dict[tuple[str, str], float]:
    """Demšar's z and Holm's adjustment written out independently (normal tail by erfc)."""
    means = {name: sum(r.values()) / n for name, r in ranks.items()}
    se = math.sqrt(k * (k + 1) / (6 * n))
    names = sorted(ranks)
    raw = {(a, b): math.erfc(abs(means[a] - means[b]) / se / math.sqrt(2))
           for i, a in enumerate(names) for b in names[i + 1:]}
    order = sorted(raw, key=raw.get)
    adjusted, running = {}, 0.0
    for i, pair in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * raw[pair]))
        adjusted[pair] = running
    return adjusted


@pytest.mark.parametrize(("n_datasets", "expected", "best"), [
    # 8 sets: A vs B/C gives z = 1.5 / sqrt(20 / 48) = 2.32, p = 0.020, Holm x5 = 0.10: tied.
    (8, {"A": 1, "B": 1, "C": 1, "D": 2}, None),
    # 12 sets: z = 2.85, p = 0.0044, Holm x5 = 0.022 <= 0.05: A alone on top, named best.
    (12, {"A": 1, "B": 2, "C": 2, "D": 3}, "A")])
def test_overall_mean_rank_groups_follow_demsars_z_test_with_holm(n_datasets, expected, best):
    from genbench.report.verdicts import overall_groups

    ranks = _ladder_ranks(n_datasets)
    calls = overall_groups(ranks, alpha=0.05)
    assert {k: c.group for k, c in calls.items()} == expected
    assert [k for k, c in calls.items() if c.best] == ([best] if best else [])
    adjusted = _holm_oracle(ranks, 4, n_datasets)
    assert (adjusted[("A", "B")] <= 0.05) == (best == "A")
    assert adjusted[("A", "D")] <= 0.05 and adjusted[("B", "C")] == 1.0


def test_overall_groups_leave_out_rows_missing_a_data_set():
    from genbench.report.verdicts import overall_groups

    ranks = _ladder_ranks(12) | {"E": {"set0": 5}}
    calls = overall_groups(ranks)
    assert calls["E"].group is None and not calls["E"].best
    assert calls["A"].best and calls["D"].group == 3  # re-ranked among the complete rows


def test_overall_table_marks_no_best_that_is_not_significant(tmp_path):
    # Two data sets cannot separate anything (z <= 1 / sqrt(1 / 2) = 1.41): one group, no best.
    for dataset in ("gmm", "moons"):
        for solver, value in (("ddpm", 1.0), ("cfm", 1.5), ("jko", 3.0)):
            for seed in (0, 1):
                write_job(tmp_path, solver, seed, value + 0.01 * seed, dataset=dataset)
    board = Leaderboard.load(tmp_path)
    overall = board.overall()
    assert [r["solver"] for r in overall] == ["ddpm", "cfm", "jko"]
    assert [r["group"] for r in overall] == [1, 1, 1] and not any(r["best"] for r in overall)
    title, header, rows, best = tables(board)[-1]
    assert title.startswith("Overall") and "group" in header and best is None
    assert all("best" not in row[-1] for row in rows)


def test_format_result_of_a_config_that_failed_before_naming_its_parts():
    text = format_result({"status": "failed", "solver": None, "dataset": None, "seed": None,
                          "error_type": "ConfigError", "error": "invalid run config: x"})
    assert text == "genbench job: FAILED: ConfigError: invalid run config: x"
    named = format_result({"status": "failed", "solver": "ddpm", "dataset": "moons", "seed": 1,
                           "error_type": "ConfigError", "error": "bad"})
    assert named.startswith("ddpm on moons (seed 1): FAILED")
