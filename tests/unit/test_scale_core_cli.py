"""The scale benchmark's options: one size on request, headline JSON, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.scale_core", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "args, word",
    [
        (["--spines", "0"], "--spines"),
        (["--leaves", "1"], "--leaves"),
        (["--flows", "0"], "--flows"),
        (["--flows", "lots"], "invalid int"),
        (["--quick", "--spines", "4"], "--quick"),
        (["--fabric", "three-tier", "--leaves", "10"], "multiple of 4"),
        (["--json", "/no/such/dir/x.json"], "--json"),
        (["--flows-each", "0"], "--flows-each"),
        (["--flows-each", "100", "--spines", "4"], "--flows-each"),
    ],
)
def test_bad_options_stop_the_run_with_one_line(args: list[str], word: str) -> None:
    done = run(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and word in done.stderr


@pytest.mark.timeout(120)
def test_one_size_writes_the_headline_numbers(tmp_path: Path) -> None:
    out = tmp_path / "headline.json"
    done = run(
        "--spines",
        "4",
        "--leaves",
        "8",
        "--flows",
        "300",
        "--out",
        str(tmp_path),
        "--json",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    head = json.loads(out.read_text())
    assert set(head["placements_per_s"]) == {"ecmp", "least-utilized", "widest", "weighted"}
    assert all(rate > 0 for rate in head["placements_per_s"].values())
    assert head["engine_setups_per_s"] > 0 and head["job_place_s"] > 0
    assert head["engine_setups_per_s_without_collector_policy"] > 0
    windows = head["engine_setups_per_s_windows"]  # the run's spread, per simulated second
    assert windows["windows"] >= 1 and windows["flows_each"] > 0
    # The run's rate is every flow over all the time: between its slowest and fastest second.
    assert windows["slowest"] - 0.1 <= head["engine_setups_per_s"] <= windows["fastest"] + 0.1
    assert windows["slowest"] <= windows["median"] <= windows["fastest"]
    assert head["job_ring_hosts"] == 8 * 8  # 8 hosts per leaf on 8 leaves
    assert head["spine_failure_flows"] > 0 and head["spine_failure_s"] > 0
    assert head["rebalance_round_s"] >= 0 and head["peak_mib"] > 0
    assert head["machine"]["cpu_count"] >= 1 and head["date"]
    for probe in (head["speed"]["before"], head["speed"]["after"]):  # runs compared by it
        assert set(probe) == {"python_add_loop_ns", "numpy_row_op_ns", "dict_miss_ns"}
        assert 0 < probe["python_add_loop_ns"] < probe["numpy_row_op_ns"]
        assert probe["dict_miss_ns"] > probe["python_add_loop_ns"]  # a miss costs more
    text = (tmp_path / "scale_core.md").read_text()
    assert "ns per pure-Python add" in text and "ns per random lookup" in text
    assert head["size"] == "4x8/300"
    views = head["publish_views"]  # every link direction and every placed flow, readable
    assert views["links"] == 2 * 4 * 8 and views["flows"] == head_flows(tmp_path)
    assert views["publish_s"] > 0 and views["scrape_bytes"] > 0
    failure = head["engine_link_failure"]  # the engine's whole reaction to a lost uplink
    assert failure["flows_on_link"] > 0 and failure["still_on_link"] == 0
    assert failure["operations"] > 0 and failure["engine_s"] > 0
    lost = head["engine_spine_down"]  # a spine's connection closes: its flows all move
    assert lost["flows_through"] > 0 and lost["still_through"] == 0
    assert lost["operations"] > 0 and lost["engine_s"] > 0 and lost["spine"].startswith("spine")
    learned = head["engine_host_learned"]  # a route to it on every switch, nothing else:
    assert learned["operations"] == 8 + 2 * 4  # one per leaf, two per spine (local repair)
    poll = head["poll"]  # a tiny fabric's statistics fit the budget: the configured second
    assert poll["interval_s"] == 1.0 and 0 < poll["round_work_s"] < poll["budget"]
    full = json.loads((tmp_path / "scale_core.json").read_text())
    assert full["results"][0]["fast_path_share"] == 1.0
    assert (
        full["results"][0]["spine_failure"]["flow_entries_compiled"]
        >= 3 * head["spine_failure_flows"]
    )


def head_flows(out: Path) -> int:
    """Flows the whole engine placed in the run written to ``out``."""
    full = json.loads((out / "scale_core.json").read_text())
    placed: int = full["results"][0]["engine"]["heap_policy"]["placed"]
    return placed


@pytest.mark.timeout(120)
def test_a_fabric_that_is_not_two_tier_is_served_and_said_to_be_slower(tmp_path: Path) -> None:
    done = run(
        "--fabric",
        "three-tier",
        "--spines",
        "2",
        "--leaves",
        "8",
        "--flows",
        "200",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert "general path" in done.stderr and "slower" in done.stderr
    result = json.loads((tmp_path / "scale_core.json").read_text())["results"][0]
    assert 0 < result["fast_path_share"] < 1
    assert result["spine_failure"]["affected_flows"] > 0


def test_the_machine_record_names_the_heap_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.scale_core import machine_info

    monkeypatch.delenv("PYTHONMALLOC", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert machine_info()["allocator"] == {"PYTHONMALLOC": "", "GLIBC_TUNABLES": ""}
    monkeypatch.setenv("PYTHONMALLOC", "malloc")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
    allocator = machine_info()["allocator"]
    assert allocator == {"PYTHONMALLOC": "malloc", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}


@pytest.mark.timeout(120)
def test_flows_each_runs_every_size_at_the_same_load(tmp_path: Path) -> None:
    done = run("--quick", "--flows-each", "60", "--no-engine", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "scale_core.json").read_text())["results"]
    assert [r["flows"] for r in results] == [60, 60, 60, 60]
    assert len({(r["spines"], r["leaves"]) for r in results}) == 4  # the quick sizes, all of them
