"""The sweep report: grouping, mean +/- std over seeds, ranking, failed jobs, outputs.

A synthetic sweep (results.json and samples.npz written by hand, no training) gives known
numbers to check the arithmetic against; the HTML page is then rendered in headless Chromium
when one is installed.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from genbench.report import Leaderboard, load_jobs, main, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "scripts" / "screenshot_report.py"


def write_job(root: Path, solver: str, dataset: str, seed: int, *, ratio: float = 1.0,
              sample_steps: int = 20, status: str = "ok", dim: int = 2) -> Path:
    folder = root / f"solver={solver},dataset={dataset},seed={seed},steps={sample_steps}"
    folder.mkdir(parents=True)
    config = {"solver": {"name": solver, "lr": 0.001, "sample_steps": sample_steps},
              "dataset": {"name": dataset, "n_test": 200}, "seed": seed, "device": "cpu",
              "logger": {"name": "none"}}
    result: dict = {"status": status, "solver": solver, "dataset": dataset, "seed": seed,
                    "config": config}
    if status == "ok":
        floor = 0.1
        result["metrics"] = {"data_w2": ratio * floor, "data_w2_floor": floor,
                             "data_w2_ratio": ratio, "latent_w2_ratio": ratio, "recon_w2": 0.0,
                             "nfe": sample_steps, "train_seconds": 1.5, "sample_seconds": 0.1,
                             "data_w2_method": "exact"}
        result["train"] = {"loss_curve": [[s, 1.0 / s] for s in (10, 20, 30)]}
        rng = np.random.default_rng(seed)
        np.savez(folder / "samples.npz", x_test=rng.normal(size=(200, dim)),
                 x_gen=rng.normal(size=(200, dim)) * ratio, z_gen=np.zeros((200, dim)),
                 z_test=np.zeros((200, dim)))
    else:
        result |= {"error_type": "DivergenceError", "error": "non-finite training loss (nan)",
                   "traceback": "Traceback (most recent call last):\n  ...\nDivergenceError"}
    (folder / "results.json").write_text(json.dumps(result))
    return folder


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """Solver a at two NFEs, solver b, on moons (2-d) and gmm (3-d); one failed job."""
    root = tmp_path_factory.mktemp("sweep")
    for dataset, dim in (("moons", 2), ("gmm", 3)):
        for seed, (fast, slow, b) in enumerate([(3.0, 1.2, 2.0), (5.0, 1.4, 2.0)]):
            write_job(root, "a", dataset, seed, ratio=fast, sample_steps=10, dim=dim)
            write_job(root, "a", dataset, seed, ratio=slow, sample_steps=50, dim=dim)
            write_job(root, "b", dataset, seed, ratio=b, dim=dim)
    write_job(root, "b", "moons", 2, status="failed")
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([1, 2], [2, 1])
    fig.savefig(root / "rates_moons.png")
    plt.close(fig)
    return root


@pytest.fixture(scope="module")
def report(sweep) -> dict[str, Path]:
    return write_report(sweep)


def test_jobs_are_labelled_by_what_varies_within_a_solver(sweep):
    jobs = load_jobs(sweep)
    assert len(jobs) == 13
    assert {j.variant for j in jobs if j.solver == "a"} == {"sample_steps=10", "sample_steps=50"}
    # b ran one configuration: the seed alone does not make a variant.
    assert {j.variant for j in jobs if j.solver == "b"} == {""}


def test_mean_std_over_seeds_and_ranking(sweep):
    board = Leaderboard.load(sweep)
    moons = {e.label: e for e in board.entries if e.dataset == "moons"}
    fast = moons["a (sample_steps=10)"]
    mean, std = fast.mean_std("data_w2_ratio")
    assert mean == pytest.approx(4.0) and std == pytest.approx(math.sqrt(2.0))  # ddof=1
    assert len(fast.ok) == 2
    slow = moons["a (sample_steps=50)"]
    assert slow.mean_std("data_w2_ratio")[0] == pytest.approx(1.3)
    assert [e.label for e in board.entries if e.dataset == "moons"] == [
        "a (sample_steps=50)", "b", "a (sample_steps=10)"]
    assert [slow.rank, moons["b"].rank, fast.rank] == [1, 2, 3]
    assert len(moons["b"].jobs) == 3 and len(moons["b"].ok) == 2  # the failed seed is counted
    overall = board.overall()
    assert overall[0]["solver"] == "a" and overall[0]["variant"] == "sample_steps=50"
    assert overall[0]["mean_rank"] == 1.0 and overall[0]["datasets"] == 2


def test_csv_tables(report):
    rows = list(csv.DictReader(report["leaderboard_csv"].open()))
    assert len(rows) == 6
    best = next(r for r in rows if r["dataset"] == "gmm" and r["rank"] == "1")
    assert best["solver"] == "a" and float(best["data_w2_ratio_mean"]) == pytest.approx(1.3)
    b_moons = next(r for r in rows if r["dataset"] == "moons" and r["solver"] == "b")
    assert (b_moons["n_ok"], b_moons["n_failed"], b_moons["seeds"]) == ("2", "1", "0 1")
    runs = list(csv.DictReader(report["runs_csv"].open()))
    assert len(runs) == 13 and sum(r["status"] == "failed" for r in runs) == 1
    failed = next(r for r in runs if r["status"] == "failed")
    assert "DivergenceError" in failed["error"]


def test_markdown_lists_rankings_failures_and_figures(report):
    text = report["markdown"].read_text()
    assert "## moons" in text and "## gmm" in text and "## Overall" in text
    assert "| 1 | a (sample_steps=50) | 1.3 ± 0.14 |" in text
    assert "## Failed jobs" in text and "DivergenceError" in text
    for name in ("samples_grid.png", "w2_vs_nfe.png", "loss_curves.png"):
        assert f"({name})" in text
        assert (report["markdown"].parent / name).stat().st_size > 5000
    assert "../rates_moons.png" in text  # found in the sweep folder, linked relatively


def test_html_is_self_contained(report):
    page = report["html"].read_text()
    assert page.count("src='data:image/png;base64,") == 4  # grid, NFE, loss, rates
    assert "src='http" not in page and "<script" not in page
    assert "class=best" in page and "DivergenceError" in page and "<details>" in page


def test_no_nfe_figure_without_an_nfe_sweep(tmp_path):
    for seed in (0, 1):
        write_job(tmp_path, "a", "moons", seed, ratio=1.0 + seed)
    files = write_report(tmp_path, tmp_path / "out")
    assert "W2 against NFE" not in files and not (tmp_path / "out" / "w2_vs_nfe.png").exists()
    assert "samples_grid.png" in files["markdown"].read_text()


def test_a_job_that_failed_before_validation_is_named_from_hydra_config(tmp_path):
    folder = tmp_path / "job"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(
        "solver:\n  name: c\ndataset:\n  name: moons\nseed: 3\n")
    (folder / "results.json").write_text(json.dumps(
        {"status": "failed", "error_type": "ConfigError", "error": "bad key"}))
    write_job(tmp_path, "a", "moons", 0)
    board = Leaderboard.load(tmp_path)
    (failed,) = board.failed
    assert (failed.solver, failed.dataset, failed.seed) == ("c", "moons", 3)
    assert "ConfigError: bad key" in failed.error


def test_cli(sweep, tmp_path, capsys):
    assert main([str(sweep), "--out", str(tmp_path), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "| 1 | a (sample_steps=50) |" in out and (tmp_path / "report.html").exists()
    assert not (tmp_path / "samples_grid.png").exists()
    assert main([str(tmp_path / "empty")]) == 2
    assert "sweep folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "no results.json" in capsys.readouterr().err
    assert main([str(sweep), "--out", str(tmp_path), "--metric", "nope"]) == 2
    assert "data_w2_ratio" in capsys.readouterr().err  # the available metrics are named


def test_report_renders_in_headless_chromium(report, tmp_path):
    sys.path.insert(0, str(SCREENSHOT.parent))
    try:
        from screenshot_report import find_chromium
    finally:
        sys.path.pop(0)
    if find_chromium() is None:
        pytest.skip("no Chromium on PATH (Debian: apt-get install -y chromium)")
    png = tmp_path / "report.png"
    proc = subprocess.run([sys.executable, str(SCREENSHOT), str(report["html"]), str(png),
                           "--width", "1200", "--height", "1600"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pixels = mpimg.imread(png)[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    # The best-row highlight (#e4f4e4) and the embedded scatter plots' blue points
    # (matplotlib tab:blue) are drawn: the tables and the images both rendered.
    def has(rgb: tuple[int, int, int], tol: float = 0.04) -> bool:
        return bool((np.abs(pixels - np.array(rgb) / 255).max(axis=-1) < tol).any())

    assert has((0xE4, 0xF4, 0xE4)), "no highlighted best row in the screenshot"
    assert has((31, 119, 180), tol=0.12), "no scatter points in the screenshot"


def test_sample_grid_layout(sweep, tmp_path):
    """Solver rows by data-set columns; one data set lays its solvers out side by side."""
    from genbench.report.figures import samples_grid

    tall = plt.imread(samples_grid(Leaderboard.load(sweep), tmp_path / "grid.png")).shape
    for solver in "abcd":
        write_job(tmp_path / "one", solver, "moons", 0)
    wide = plt.imread(samples_grid(Leaderboard.load(tmp_path / "one"), tmp_path / "one.png")).shape
    assert tall[0] > tall[1]  # (height, width): 3 variants x 2 data sets
    assert wide[1] > 2 * wide[0]  # 4 solvers in one row, not one tall column
