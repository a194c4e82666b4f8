"""The arithmetic and tables of the newer benchmarks, on flowgen reports made up by hand.

Collective completion time, delivered share and the "of ceiling" columns are
what users compare; each case states the answer worked out on paper. The
Markdown sections must render from the JSON the benchmarks write (the quick
smoke test runs the fabric; these run in milliseconds).
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import cluster_bench, collectives, egress_gap, flowmod_rate
from benchmarks.lab import Flow


def _udp_result(tag: int, sent: int, got: int) -> dict[str, Any]:
    flow = Flow((1, 1), (2, 1), "udp", 4791, 40000 + tag, 9.0, 1000, tag=tag)
    sink = {"flows": {str(tag): {"packets": got}}}
    return {"flow": flow, "sent": {"packets": sent}, "sink": sink, "start_at": 100.0}


def _tcp_result(nbytes: int, last: float) -> dict[str, Any]:
    flow = Flow((1, 1), (2, 1), "tcp", 29500, 40000, nbytes=1000)
    sink = {"bytes": nbytes, "last_time": last}
    return {"flow": flow, "sent": {"bytes": nbytes}, "sink": sink, "start_at": 100.0}


def test_udp_goodput_counts_delivered_packets_over_the_run_time() -> None:
    run = {"results": [_udp_result(0, 1000, 1000), _udp_result(1, 1000, 500)], "packet_ins": 3}
    # 1500 packets x 1000 bytes x 8 bits over 2 s = 6 Mbit/s; bound 12 Mbit/s.
    rec = collectives._udp_record(run, seconds=2.0, bound=12e6)
    assert rec["goodput_bps"] == 6e6 and rec["ratio"] == 0.5
    assert rec["lost_fraction"] == 0.25 and rec["packet_ins"] == 3


def test_cct_is_the_last_byte_of_the_last_flow_from_the_common_start() -> None:
    run = {"results": [_tcp_result(1000, 102.5), _tcp_result(1000, 104.0)]}
    rec = collectives._tcp_record(run, nbytes=1000, ideal_s=2.0)
    assert rec["cct_s"] == 4.0 and rec["cct_over_ideal"] == 2.0 and rec["flows_complete"] == 2


def test_a_collective_missing_bytes_has_no_completion_time() -> None:
    run = {"results": [_tcp_result(1000, 102.5), _tcp_result(999, 104.0)]}
    rec = collectives._tcp_record(run, nbytes=1000, ideal_s=2.0)
    assert rec["cct_s"] is None and rec["cct_over_ideal"] is None and rec["flows_complete"] == 1


def _summary(ratios: list[float], ccts: list[float | None]) -> dict[str, Any]:
    udp = [{"ratio": r, "lost_fraction": 1 - r} for r in ratios]
    tcp = [{"cct_s": c, "cct_over_ideal": None if c is None else c / 2} for c in ccts]
    return collectives._summary(udp, tcp)


def test_the_summary_takes_medians_and_counts_incomplete_runs() -> None:
    s = _summary([0.5, 1.0, 0.9], [3.0, None, 2.0])
    assert s["ratio_median"] == 0.9 and s["ratio_n"] == 3
    assert s["cct_s_median"] == 2.5 and s["incomplete_runs"] == 1
    assert s["lost_fraction_median"] == pytest.approx(0.1)


def _collectives_doc() -> dict[str, Any]:
    strategies = {
        "ceiling": _summary([1.0], [2.6]),
        "ecmp": _summary([0.25], [4.4]),
        "least-utilized": _summary([0.98], [2.9]),
        "job": _summary([1.0], [None]),
    }
    for s in strategies.values():
        s["ratio_vs_ceiling"] = collectives._ratio(s["ratio_median"], 1.0)
        s["cct_vs_ceiling"] = collectives._ratio(s["cct_s_median"], 2.6)
    return {
        "fabric": "2 spines x 4 leaves x 2 hosts",
        "link_mbps": 10.0,
        "ceiling_check": {"ratio": 0.9, "ok": False},
        "workloads": {"ring": {"flows": 8, "ideal_cct_s": 2.0, "strategies": strategies}},
    }


def test_the_collectives_table_shows_every_strategy_next_to_the_ceiling() -> None:
    text = "\n".join(collectives.markdown_section(_collectives_doc()))
    assert "| ring (8 flows) | emulator ceiling | 1.00 | 1.00 |" in text
    assert "| ring (8 flows) | ecmp | 0.25 | 0.25 | 75.0% | 4.40 | 2.00 | 2.20 | 1.69 | 1 |" in text
    assert "1 (1 TCP incomplete)" in text  # the job's only TCP run did not complete
    assert "below 0.95" in text  # a busy machine is said so


def test_the_other_sections_render_from_their_json() -> None:
    gap = {"gap_ms_n": 3, "gap_ms_median": 5.0, "gap_ms_min": 4.0, "gap_ms_max": 9.0}
    g = {
        "rate_pps": 1000,
        "with_local_repair": {**gap, "lost_median": 5, "max_silence_ms_median": 7.5},
        "without_local_repair": {**gap, "lost_median": 60, "max_silence_ms_median": 70.0},
    }
    assert "| on | 3 | 5 | 5.0 | 4.0-9.0 | 7.5 |" in "\n".join(egress_gap.markdown_section(g))
    h = {"kills": 10, "rate_pps": 1000, "takeover_s_median": 2.2, "takeover_s_max": 2.6}
    h |= {"takeover_s_min": 2.0, "ai_lost_median": 0, "ai_lost_max": 0, "ai_lost_total": 0}
    h |= {"default_lost_median": 0, "default_lost_max": 3, "default_lost_total": 3}
    text = "\n".join(cluster_bench.markdown_section(h))
    assert "| takeover s (kill -9 to new leader) | 2.20 | 2.60 | 2.00 |" in text
    assert "| default flow: packets lost per kill | 0 | 3 | total 3 |" in text
    i = {
        "fabric": "4 spines x 16 leaves x 4 hosts",
        "job": "all-to-all among 64 hosts, UDP 4791",
        "pairs": 4032,
        "onos_paths_per_s": flowmod_rate.ONOS_PATHS_PER_S,
        "apply_s_median": 2.4,
        "dry_run_s_median": 0.1,
        "delete_s_median": 4.0,
        "mods_per_s_median": 4900.0,
        "paths_per_s_median": 1680.0,
        "fabricd_cpu_share_median": 0.8,
        "ovs_cpu_share_median": 0.4,
        "valid_reps": 1,
        "link_downs_seen": 4,
        "reps": [
            {"valid": False, "flow_mods": 38, "group_mods": 4, "delete_mods": 42},
            {"valid": True, "flow_mods": 11712, "group_mods": 64, "delete_mods": 11776},
        ],
    }
    text = "\n".join(flowmod_rate.markdown_section(i))
    assert "| ApplyJob (rules confirmed) | 4032 | 11776 | 2.40 | 4900 | 1680 |" in text
    assert "~18,800" in text and "fabricd used 80% of one core" in text
    assert "1 of 2 reps did not place every pair" in text and "(nothing failed): 4" in text


def test_an_event_between_phases_belongs_to_the_nearest_one() -> None:
    from benchmarks.demo_report import PhaseRun, _phase_at

    def run(name: str, start: float, end: float) -> PhaseRun:
        return PhaseRun(name, "s", [], [], [], {}, start, end, {}, {}, 1.0, "")

    runs = [run("ring", 0.0, 15.0), run("ring, declared job", 16.2, 31.0)]
    assert _phase_at(runs, 7.0) == "ring"
    assert _phase_at(runs, 16.0) == "ring, declared job"  # ApplyJob just before its traffic
    assert _phase_at(runs, 15.3) == "ring"
    assert _phase_at(runs, 40.0) == "-"
