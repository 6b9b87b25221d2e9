"""Render a report page in headless Chromium and save a screenshot (PNG).

    python scripts/screenshot_report.py multirun/.../report/report.html docs/report.png

Needs a Chromium binary (Debian: ``apt-get install -y chromium``; or pass ``--chromium``).
The browser runs with a fresh profile, no sandbox, no GPU and no background network
traffic, so it works in containers and CI. Exit status 0 when the PNG was written.

References:
    The Chromium Authors, "Headless Chrome", https://developer.chrome.com/docs/chromium/headless.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["CHROMIUM_NAMES", "find_chromium", "main", "screenshot"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--disable-dev-shm-usage")


def find_chromium() -> str | None:
    """The first Chromium-family browser on ``PATH``, or ``None``."""
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def screenshot(page: Path, out: Path, *, width: int = 1400, height: int = 2000,
               chromium: str | None = None, timeout: float = 120) -> Path:
    """Load ``page`` (a local HTML file) and write a ``width`` x ``height`` PNG to ``out``."""
    browser = chromium or find_chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium found on PATH (Debian: apt-get install -y chromium)")
    page, out = Path(page).resolve(), Path(out).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"no such page: {page}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="genbench-chromium-") as profile:
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}",
               f"--window-size={width},{height}", page.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not out.exists():
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("page", type=Path, help="the report.html to render")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=2000)
    parser.add_argument("--chromium", default=None, help="browser binary (default: on PATH)")
    args = parser.parse_args(argv)
    try:
        path = screenshot(args.page, args.out, width=args.width, height=args.height,
                          chromium=args.chromium)
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as err:
        print(f"screenshot_report: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
