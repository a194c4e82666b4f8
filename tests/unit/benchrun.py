"""Run a benchmark module in quick mode, as a user would, for the benchmark smoke tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_quick(module: str, out: Path) -> None:
    """``python -m <module> --quick --out <out>`` from the project root; fails on a non-zero exit.

    Quick modes take seconds; the 200 s bound leaves room for a loaded machine
    and for mutation runs (every core function instrumented). How fast a
    benchmark is belongs to ``make bench``, not to a test assertion.
    """
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert done.returncode == 0, done.stderr
