"""`make demo` and `make bench` in their quick forms: they run, clean up, and report sane numbers.

Each runs as a subprocess, as `make` runs it, with a generous timeout; on a
timeout it gets Ctrl-C (so it tears its fabric down) and only then a kill, by
pid. The checks are about the reports' shape and plausibility (ratios within
the bound, positive latencies under seconds), never about how fast anything is.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from controller.devtools.process import REPO

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(args: list[str], *, timeout: float) -> tuple[int, str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # lets it stop its fabric and fabricd
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"{' '.join(args)} ran over {timeout:.0f} s\n{out[-3000:]}\n{err[-3000:]}")
    return proc.returncode, out, err


def _leftovers(marker: str) -> list[str]:
    """Command lines of live processes that mention ``marker`` (our output directory)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in text and "pytest" not in text:
            found.append(text.strip())
    return found


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_demo_writes_a_sane_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    rc, stdout, stderr = _run(["benchmarks.demo", "--quick", "--out", str(out)], timeout=420)
    assert rc == 0, f"demo exited {rc}\n{stdout[-3000:]}\n{stderr[-3000:]}"
    assert "phase 6/6" in stdout and "| # | phase |" in stdout, stdout[-2000:]
    assert "ceiling check:" in stdout, stdout[-2000:]
    assert not _leftovers(str(out)), "the demo left processes running"

    doc = json.loads((out / "report.json").read_text())
    assert {"machine", "date", "config", "ceiling_check", "phases", "events"} <= doc.keys()
    assert doc["machine"]["cpu_count"] >= 1 and doc["machine"]["ovs_version"]
    assert doc["config"]["bw"] == 10.0  # a rate the emulator carries
    check = doc["ceiling_check"]
    assert 0 < check["delivered"] <= 1.01 and check["ok"] in (True, False), check
    names = [p["name"] for p in doc["phases"]]
    assert names == [
        "ring, hash ECMP",
        "ring",
        "ring, declared job",
        "all-to-all",
        "hot spot",
        "link failure",
    ]
    for phase in doc["phases"]:
        assert {
            "name",
            "strategy",
            "flows",
            "goodput_bps",
            "bound_bps",
            "ratio",
            "ceiling",
            "ratio_vs_ceiling",
            "reroutes",
            "gap",
        } <= (phase.keys())
        assert phase["flows"] >= 1
        assert phase["bound_bps"] > 0, phase
        assert 0 < phase["ratio"] <= 1.05, phase
        assert phase["goodput_bps"] == pytest.approx(phase["ratio"] * phase["bound_bps"], rel=0.01)
        assert all(isinstance(n, int) and n > 0 for n in phase["reroutes"].values())
        ceiling = phase["ceiling"]
        assert ceiling is not None and 0 < ceiling["ratio"] <= 1.05, phase
        assert phase["ratio_vs_ceiling"] == pytest.approx(
            phase["ratio"] / ceiling["ratio"], rel=0.01
        )
    strategies = [p["strategy"] for p in doc["phases"][:3]]
    assert strategies == ["ecmp", "least-utilized", "declared job"]
    # The three ring phases carry the same traffic: one ceiling run serves them all.
    assert doc["phases"][0]["ceiling"] == doc["phases"][1]["ceiling"] == doc["phases"][2]["ceiling"]
    declared = doc["phases"][2]["per_flow"]
    assert all(f["placed_path"] for f in declared), declared  # the job's pairs, placed
    assert all(p["gap"] is None for p in doc["phases"][:5])
    gap = doc["phases"][5]["gap"]
    assert gap["affected_flows"] >= 1, gap
    for key in ("lost_packets", "gap_ms", "max_gap_ms", "unaffected_lost_packets"):
        assert _finite(gap[key]) and gap[key] >= 0, (key, gap)
    assert gap["max_gap_ms"] < 10_000, gap
    kinds = {e["kind"] for e in doc["events"]}
    assert "link-down" in kinds, kinds
    assert all(_finite(e["t_s"]) for e in doc["events"])

    md = (out / "report.md").read_text()
    assert "| # | phase |" in md and "## Link failure" in md
    assert md.count("| *emulator ceiling* (") == 4 and "Ceiling check at start" in md
    assert (out / "goodput.png").read_bytes()[:8] == PNG_MAGIC


def _in_seconds(value: Any) -> bool:
    return _finite(value) and 0 < value < 5


# The smoke stays near four minutes with the demo: every older benchmark, and of the newer
# ones those that are cheap when quick (h: two kills, i: a 56-pair job). f (collectives,
# ~1 min even when quick) runs its parts in the quick demo (ceiling, declared job) and its
# arithmetic in the unit tests; g (egress gap, two fabrics) has its integration test in
# test_spread_and_repair.
SMOKE_BENCHMARKS = "a,b,c,d,e,h,i"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_bench_writes_sane_numbers(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ["benchmarks", "--quick", "--only", SMOKE_BENCHMARKS, "--out", str(out)]
    rc, stdout, stderr = _run(args, timeout=480)
    assert rc == 0, f"bench exited {rc}\n{stdout[-3000:]}\n{stderr[-3000:]}"
    assert not _leftovers(str(out)), "the bench left processes running"

    doc = json.loads((out / "bench.json").read_text())
    keys = {"machine", "date", "quick", "config", "errors", "scale_core"}
    keys |= {"goodput_ratio", "failover_gap", "hotspot_reroute", "apply_policy", "flow_setup"}
    keys |= {"collectives", "egress_gap", "takeover", "flowmod_rate"}
    assert keys <= doc.keys()
    assert doc["errors"] == {} and doc["quick"] is True and doc["scale_core"] is None
    assert doc["collectives"] is None and doc["egress_gap"] is None  # not asked for: null
    assert doc["config"]["bw_mbps"] == 10.0
    assert doc["machine"]["ovs_version"] and doc["machine"]["memory_bytes"] > 0

    workloads = doc["goodput_ratio"]["workloads"]
    assert set(workloads) == {"pair"}
    for name, w in workloads.items():
        assert w["bound_bps"] > 0, name
        assert set(w["strategies"]) == {"ceiling", "ecmp", "least-utilized", "widest"}
        for strategy, r in w["strategies"].items():
            assert r["ratio_n"] >= 1
            for run in r["runs"]:
                assert 0 < run["ratio"] <= 1.05, (name, strategy, run)
                assert run["collisions"] >= 0
        # The static optimal placement of two flows leaf1 -> leaf2 has no collision.
        assert all(run["collisions"] == 0 for run in w["strategies"]["ceiling"]["runs"])

    failover = doc["failover_gap"]
    assert failover["rate_pps"] > 0
    for key in ("with_failover_groups", "without_failover_groups"):
        for rep in failover[key]["reps"]:
            assert rep["lost"] >= 0 and rep["gap_ms"] >= 0 and rep["max_silence_ms"] >= 0
            assert rep["sent"] > 0
        assert failover[key]["gap_ms_median"] >= 0

    hot = doc["hotspot_reroute"]
    assert hot["seconds_n"] >= 1 and _in_seconds(hot["seconds_median"]), hot
    assert hot["data_plane_s_n"] >= 1 and _in_seconds(hot["data_plane_s_median"]), hot
    apply = doc["apply_policy"]
    assert apply["seconds_n"] >= 1 and _in_seconds(apply["since_call_s_median"]), apply
    # From ApplyPolicy *returning*: may be <= 0 if the switches were faster than the reply.
    assert _finite(apply["seconds_median"]) and -5 < apply["seconds_median"] < 5, apply
    setup = doc["flow_setup"]
    assert setup["answered"] >= 1
    for key in ("setup_s_p50", "setup_s_p99", "first_rtt_s_p50", "second_rtt_s_p50"):
        assert _in_seconds(setup[key]), (key, setup)
    assert setup["controller"]["count"] >= 1
    assert _in_seconds(setup["controller"]["p50_s"]), setup["controller"]

    takeover = doc["takeover"]
    assert takeover["kills"] == 2 and len(takeover["reps"]) == 2
    assert {r["killed"] for r in takeover["reps"]} == {"a", "b"}  # the restarted node led again
    for rep in takeover["reps"]:
        assert _finite(rep["takeover_s"]) and 0 < rep["takeover_s"] < 30, rep
        for flow in rep["flows"].values():
            assert flow["sent"] > 0 and 0 <= flow["lost"] <= flow["sent"], rep

    mods = doc["flowmod_rate"]
    assert mods["pairs"] == 56  # all-to-all among the 8 hosts of the quick fabric
    assert mods["valid_reps"] >= 1, mods
    for rep in mods["reps"]:
        assert rep["pairs_placed"] == rep["pairs"] and rep["valid"], rep
        # Every flow rule the controller sent is on a switch when ApplyJob returns:
        # one per pair, at its ingress leaf (transit hops ride the host routes).
        assert rep["entries_on_switches"] == rep["flow_mods"] == rep["pairs"], rep
        assert rep["delete_flow_mods"] == rep["flow_mods"], rep
        assert rep["dry_run_s"] > 0 and 0 < rep["apply_s"] < 60, rep
        assert rep["mods_per_s"] > 0 and rep["barriers"] > 0, rep

    md = (out / "bench.md").read_text()
    for title in ("## a.", "## b.", "## c, d.", "## e.", "## h.", "## i."):
        assert title in md
    assert "emulator ceiling" in md and "## f." not in md and "## g." not in md


@pytest.mark.parametrize(
    "args",
    [
        ["benchmarks.demo", "--hosts-per-leaf", "0"],
        ["benchmarks.demo", "--phase-seconds", "0"],
        ["benchmarks.demo", "--strategy", "fastest"],
        ["benchmarks.demo", "--bw", "40"],
        ["benchmarks", "--only", "z"],
        ["benchmarks", "--reps", "0"],
        ["benchmarks", "--no-such-option"],
    ],
)
def test_a_bad_option_fails_at_once_with_one_line(args: list[str]) -> None:
    rc, stdout, stderr = _run(args, timeout=60)
    assert rc != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "error" in lines[0] and args[1] in lines[0], lines[0]
    assert "Traceback" not in stdout + stderr
