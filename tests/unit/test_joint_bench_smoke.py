"""The joint placement benchmark runs in quick mode and its rows are consistent.

It is not part of ``make bench``'s default run, so only this test notices when
it stops importing or running (it once imported a helper from a module that
no longer had it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchrun import run_quick


@pytest.mark.timeout(240)
def test_quick_joint_benchmark_writes_consistent_rows(tmp_path: Path) -> None:
    run_quick("benchmarks.joint_bench", tmp_path)
    rows = json.loads((tmp_path / "joint.json").read_text())["rows"]
    solved = [r for r in rows if r["peak"] is not None]
    assert len(solved) >= 6
    for r in solved:
        assert r["peak"] >= r["bound"] - 1e-9, r  # nothing beats the bound
    general = {}
    for r in rows:
        if r["fabric"].startswith("3-tier"):
            general.setdefault(r["case"], {})[r["method"]] = r["peak"]
    assert general
    for case, by_method in general.items():
        # The exact method is never above the heuristic.
        assert by_method["milp"] <= by_method["local-search"] + 1e-9, case
    table = (tmp_path / "joint.md").read_text()
    assert table.count("\n| ") == len(rows) + 1
