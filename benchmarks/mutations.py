"""Prove the fast tests bite: apply one deliberate formula error at a time, run them, record.

Each mutation is a text substitution in one source file, applied to a temporary copy of the
repository (the working tree is never touched); the oracle tests then run on that copy
(``PYTHONPATH`` points at it). A mutation is *caught* when at least one test fails. The
table goes to ``benchmarks/results/mutations.md``.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/mutations.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_oracles.py", "tests/test_oracle_metrics.py", "tests/test_lsb_convolved.py"]
OUT = ROOT / "benchmarks" / "results" / "mutations.md"

# (name, file, original text, mutated text)
MUTATIONS = [
    ("ddpm ancestral noise scaled by the variance, not the std", "solvers/ddpm.py",
     "x = x + var**0.5 * torch.randn", "x = x + var * torch.randn"),
    ("ddpm posterior-mean coefficient (1-beta) instead of sqrt(1-beta)", "solvers/ddpm.py",
     "(1 - beta) ** 0.5 * (1 - abar_prev) * x", "(1 - beta) * (1 - abar_prev) * x"),
    ("ddpm posterior-mean x0 coefficient abar_prev instead of its sqrt", "solvers/ddpm.py",
     "x = (abar_prev**0.5 * beta * x0", "x = (abar_prev * beta * x0"),
    ("ddim abar_prev * x0 instead of sqrt(abar_prev) * x0", "solvers/ddpm.py",
     "x = abar_prev**0.5 * x0 +", "x = abar_prev * x0 +"),
    ("ddim eta variance without (1 - abar/abar_prev)", "solvers/ddpm.py",
     "(1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)", "(1 - abar_prev) / (1 - abar)"),
    ("ddpm x0 from eps with (1 - abar) instead of its sqrt", "solvers/ddpm.py",
     "x0 = (x - (1 - abar) ** 0.5 * eps)", "x0 = (x - (1 - abar) * eps)"),
    ("ddpm training path abar * z instead of sqrt(abar) * z", "solvers/ddpm.py",
     "x_t = abar.sqrt() * z", "x_t = abar * z"),
    ("cosine schedule offset s = 0.08 instead of 0.008", "solvers/schedules.py",
     "        s = 0.008\n        steps =", "        s = 0.08\n        steps ="),
    ("VP log-alpha with a wrong constant (-0.5 t^2 instead of -0.25 t^2)", "solvers/schedules.py",
     "return -0.25 * t**2 *", "return -0.5 * t**2 *"),
    ("VP beta(t) off by beta_min", "solvers/schedules.py",
     "return self.beta_min + t * (self.beta_max - self.beta_min)",
     "return t * (self.beta_max - self.beta_min)"),
    ("pfode drift factor 1/2 -> 1", "solvers/pfode.py",
     "return -0.5 * self.schedule.beta(t)", "return -1.0 * self.schedule.beta(t)"),
    ("pfode score eps / sigma^2 instead of eps / sigma", "solvers/pfode.py",
     "self.ema.module(x, t) / sigma)", "self.ema.module(x, t) / sigma**2)"),
    ("pfode training path with alpha and sigma swapped", "solvers/pfode.py",
     "Regression(alpha * z + sigma * eps, t, eps)", "Regression(sigma * z + alpha * eps, t, eps)"),
    ("pfode ancestral mean with alpha_ts^2 for alpha_ts", "solvers/pfode.py",
     "net(x, ts[i])) / a_ts", "net(x, ts[i])) / a_ts**2"),
    ("pfode ancestral noise coefficient sigma_s for sigma_t", "solvers/pfode.py",
     "(var_ts / s[i]) * net", "(var_ts / s[i + 1]) * net"),
    ("pfode ancestral variance without sigma_s^2 / sigma_t^2", "solvers/pfode.py",
     "(var_ts * s[i + 1] ** 2 / s[i] ** 2) ** 0.5", "var_ts ** 0.5"),
    ("pfode ancestral net read at the step's end time", "solvers/pfode.py",
     "net(x, ts[i])", "net(x, ts[i + 1])"),
    ("pfode reverse SDE with the PF-ODE's 1/2 on the score", "solvers/pfode.py",
     "(0.5 * x - net(x, t) / sigma)", "(0.5 * x - 0.5 * net(x, t) / sigma)"),
    ("pfode reverse SDE noise h beta instead of sqrt(h beta)", "solvers/pfode.py",
     "(h * self.schedule.beta(t_top - s * h)).sqrt()", "(h * self.schedule.beta(t_top - s * h))"),
    ("change of variables with the divergence sign flipped", "solvers/ode.py",
     "return prior + divergence, nfe", "return prior - divergence, nfe"),
    ("cfm path with x0 and x1 swapped", "solvers/cfm.py",
     "x_t = (1 - t) * x0 + t * x1", "x_t = (1 - t) * x1 + t * x0"),
    ("cfm regression target x0 - x1", "solvers/cfm.py",
     "Regression(x_t, t.squeeze(1), x1 - x0)", "Regression(x_t, t.squeeze(1), x0 - x1)"),
    ("lsb drift without the 1 / (1 - t)", "solvers/lsb.py",
     "return (self.denoise(x, t, net=net) - x) / (1 - torch.as_tensor(t, dtype=x.dtype))",
     "return self.denoise(x, t, net=net) - x"),
    ("lsb diffusion sigma * dt instead of sigma * sqrt(dt)", "solvers/lsb.py",
     "(cfg.sigma * width.sqrt())", "(cfg.sigma * width)"),
    ("lsb convolved path noise sigma (1 - t) instead of sigma sqrt(1 - t)", "solvers/lsb.py",
     "return torch.ones_like(t), sigma * (1 - t).clamp(min=0).sqrt()",
     "return torch.ones_like(t), sigma * (1 - t).clamp(min=0)"),
    ("lsb Föllmer path signal 1 instead of t", "solvers/lsb.py",
     "return t, sigma * (t * (1 - t)).clamp(min=0).sqrt()",
     "return torch.ones_like(t), sigma * (t * (1 - t)).clamp(min=0).sqrt()"),
    ("lsb convolved start without the sigma noise", "solvers/lsb.py",
     "return latents[index] + self.config.sigma * eps", "return latents[index] + 0 * eps"),
    ("lsb convolved start from a Gaussian fit (the old `smoothed`)", "solvers/lsb.py",
     "return latents[index] + self.config.sigma * eps",
     "return latents.mean(0) + (latents.var(0) + self.config.sigma**2).sqrt() * eps"),
    ("jko proximal term |x1 - x0|^2 / h instead of / (2h)", "solvers/jko.py",
     "/ (2.0 * self.step_size(k))", "/ self.step_size(k)"),
    ("jko objective with + int div", "solvers/jko.py",
     "return potential - int_div + movement", "return potential + int_div + movement"),
    ("jko log_prob with the divergence subtracted", "solvers/jko.py",
     "return gaussian_log_prob(x) + total", "return gaussian_log_prob(x) - total"),
    ("sinkhorn without its debiasing terms", "genbench/eval/metrics/w2.py",
     "div = transport_cost(x, y) - 0.5 * (transport_cost(x, x) + transport_cost(y, y))",
     "div = transport_cost(x, y)"),
    ("floor on half the reference sample", "genbench/eval/floors.py",
     "value, method = w2(test, reference, **w2_settings(cfg))",
     "value, method = w2(test, reference[: len(reference) // 2], **w2_settings(cfg))"),
]


def copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", "outputs",
                                    "multirun", ".pytest_cache", "results")
    for name in ("genbench", "solvers", "tests", "configs", "pyproject.toml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / name)


def run_tests(tree: Path) -> tuple[bool, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *TESTS],
        cwd=tree, env=env, capture_output=True, text=True, timeout=900,
    )
    failed = re.findall(r"^FAILED (\S+)", proc.stdout, flags=re.M)
    return proc.returncode == 0, failed[0] if failed else proc.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="substrings of mutation names to run")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or any(o in m[0] for o in args.only)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "repo"
        copy_tree(tree)
        probe = subprocess.run([sys.executable, "-c", "import solvers; print(solvers.__file__)"],
                               cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)),
                               capture_output=True, text=True)
        if not probe.stdout.startswith(str(tree)):
            sys.exit(f"the copy is not the code under test: solvers from {probe.stdout!r}")
        ok, detail = run_tests(tree)
        if not ok:
            sys.exit(f"the unmutated tests fail: {detail}")
        for name, file, old, new in chosen:
            path = tree / file
            source = path.read_text()
            if source.count(old) != 1:
                rows.append((name, file, "NOT APPLIED (text not found once)"))
                continue
            path.write_text(source.replace(old, new))
            try:
                passed, detail = run_tests(tree)
            finally:
                path.write_text(source)
            rows.append((name, file, f"MISSED ({detail})" if passed else f"caught by `{detail}`"))
            print(f"{name}: {rows[-1][2]}", flush=True)
    caught = sum(r[2].startswith("caught") for r in rows)
    lines = ["# Mutation table: deliberate formula errors against the fast oracle tests", "",
             f"Generated by `python benchmarks/mutations.py`; tests run: {', '.join(TESTS)}.",
             f"Caught {caught} of {len(rows)}.", "",
             "| mutation | file | result (first failing test) |", "|---|---|---|"]
    lines += [f"| {n} | `{f}` | {r} |" for n, f, r in rows]
    if not args.only:
        tmp_out = OUT.with_suffix(".md.tmp")
        tmp_out.write_text("\n".join(lines) + "\n")
        tmp_out.replace(OUT)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
