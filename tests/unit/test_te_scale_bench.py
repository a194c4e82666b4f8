"""The core scale benchmark runs end to end in quick mode and writes stable output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchrun import run_quick


@pytest.mark.timeout(240)
def test_quick_benchmark_writes_json_and_markdown(tmp_path: Path) -> None:
    run_quick("benchmarks.scale_core", tmp_path)
    report = json.loads((tmp_path / "scale_core.json").read_text())
    assert report["benchmark"] == "scale_core" and report["quick"] is True
    assert report["machine"]["cpu_count"] >= 1 and report["date"]
    assert report["total_seconds"] > 0
    results = report["results"]
    assert len(results) >= 4
    assert [r["spines"] * r["leaves"] for r in results] == sorted(
        r["spines"] * r["leaves"] for r in results
    )
    for r in results:
        assert set(r["placement"]) == {"ecmp", "least-utilized", "widest", "weighted"}
        assert all(p["flows_per_s"] > 0 for p in r["placement"].values())
        failure = r["spine_failure"]
        assert failure["affected_flows"] == failure["moved"] + failure["stranded"] > 0
        assert r["rebalance"]["constructed_hot_links"] > 0
        assert r["memory"]["peak_mib"] > 0
        naive = r["naive_baseline"]
        assert naive["extrapolated"] is True and naive["sample_flows"] > 0
    table, engine = (tmp_path / "scale_core.md").read_text().split("Whole engine")
    assert "extrapolated" in table
    assert table.count("\n| ") == len(results) + 1  # header + one row per size
    assert engine.count("\n| ") == len(results) + 1  # the engine's too
    for r in results:
        on = r["engine"]["heap_policy"]
        # All but the last fifth (at most 200) timed; those traced for their lines.
        assert on["placed"] == on["timed_flows"] == r["flows"] - min(200, r["flows"] // 5)
        assert on["lines_per_setup"] > 100
        assert r["job"]["ring_hosts"] >= 2 and r["job_place_s"] > 0
        assert 0 <= r["job"]["gc_s"] <= r["job"]["apply_s"] + 0.01  # part of the job's time
