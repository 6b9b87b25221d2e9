"""The parts' dependency rules (import-linter contracts in pyproject.toml) and a light report."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed (pip install -e .[test])")
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize("module", ["genbench.report", "genbench.report.rates",
                                    "genbench.sweep.jobs"])
def test_reading_results_does_not_load_torch(module):
    code = (f"import sys, {module}; "
            "print(sorted(m for m in ('torch', 'ot', 'sklearn') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"import {module} loaded {done.stdout.strip()}"
