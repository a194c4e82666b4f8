"""Declared jobs on a real emulated fabric: rules before the first packet, line rate, failures.

2 spines x 4 leaves x 2 hosts at 10 Mbit/s, paced UDP at 90% of the link
rate: the emulator carries this much on this machine (see the environment
notes) on most days; on a slow day it loses a few percent of every flow alike.
Delivery is judged per flow from sequence numbers: a placement fault does not
lose alike (two flows on one link get at most 10/18 of their packets through,
the others all of theirs), so flows must fare alike, and the total must reach a
floor of the fabric's bound.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from fabric.v1 import fabric_pb2 as pb

from benchmarks.bounds import job_bound
from benchmarks.lab import Flow, Lab
from controller.devtools.process import wait_until

BW = 10.0
RATE = 9.0  # Mbit/s per flow: 90% of a link
SECONDS = 10.0
JOB_COOKIE = re.compile(r"cookie=0xfa05")


def _log(line: str) -> None:
    print(line)


def _ring(order: Sequence[tuple[int, int]], port: int = 4791) -> list[Flow]:
    return [
        Flow(src, order[(i + 1) % len(order)], "udp", port, 50000 + i, RATE, 1000, tag=i)
        for i, src in enumerate(order)
    ]


def _job(lab: Lab, name: str, order: Sequence[tuple[int, int]]) -> object:
    return pb.Job(
        name=name,
        hosts=[lab.fab.ip(*ref) for ref in order],
        pattern=pb.JOB_PATTERN_RING,
        match=pb.FlowMatch(ip_proto=17, dst_ports=[pb.PortRange(lo=4791, hi=4791)]),
        demand_mbps=RATE,
    )


# The emulator at its CPU ceiling (2026-12-02, a VM ~3x slower than usual) lost
# up to a quarter of every flow, roughly alike: 0.76-0.999 of the bound in total
# over 29 runs; in the worst run recorded per flow (0.81 of the bound) the worst
# flow got 0.81 of what the best got. A collision leaves its two flows at most
# 10/18 = 0.56 of what the link carries, the others all of theirs.
MIN_OF_BOUND = 0.6  # the total must not collapse; placement is judged per flow
MIN_WORST_OVER_BEST = 0.7


def _received(result: dict) -> int:
    """Packets of one flow its sink received in sequence."""
    got: int = result["sink"]["flows"].get(str(result["flow"].tag), {"packets": 0})["packets"]
    return got


def _shares(results: list[dict]) -> dict[int, float]:
    """Each flow's delivered share of the packets it sent (sequence numbers at the sink)."""
    return {r["flow"].tag: _received(r) / max(1, r["sent"]["packets"]) for r in results}


def _assert_flows_fared_alike(results: list[dict], what: str) -> None:
    shares = _shares(results)
    worst, best = min(shares.values()), max(shares.values())
    assert worst >= MIN_WORST_OVER_BEST * best, (
        f"{what}: one flow got {worst:.3f} of its packets through, another {best:.3f} "
        f"(a placement fault, not the emulator): {shares}"
    )


def _delivered(results: list[dict]) -> float:
    """Summed goodput (bits/s) of the flows, from what each sink received in sequence."""
    total = 0.0
    for r in results:
        total += _received(r) * r["flow"].size * 8 / SECONDS
    return total


def _bound(flows: list[Flow], *, down: Sequence[tuple[int, int]] = ()) -> float:
    return job_bound(
        flows,
        spines=2,
        leaves=4,
        hosts_per_leaf=2,
        link_bps=BW * 1e6,
        nic_bps=BW * 1e6,
        down=down,
    )


def _packet_ins(lab: Lab) -> float:
    return lab.daemon.value("fabric_packet_in_total", kind="ipv4")


def _job_rules(lab: Lab) -> dict[str, int]:
    switches = [f"leaf{j}" for j in range(1, 5)] + ["spine1", "spine2"]
    return {sw: len(JOB_COOKIE.findall(lab.fab.dump_flows(sw))) for sw in switches}


@pytest.fixture
def lab(tmp_path: Path):
    with Lab(
        tmp_path / "lab",
        spines=2,
        leaves=4,
        hosts_per_leaf=2,
        bw=BW,
        host_bw=BW,
        fabricd_flags=("--lldp-interval", "0.5"),
        log=_log,
    ) as running:
        yield running


def test_a_declared_ring_is_in_place_before_traffic_and_runs_at_the_bound(lab: Lab) -> None:
    # Every leaf sends two flows across the fabric and receives two: with two
    # spines, only a joint assignment gives every flow links of its own.
    order = [(1, 1), (2, 1), (3, 1), (4, 1), (1, 2), (2, 2), (3, 2), (4, 2)]
    flows = _ring(order)
    resp = lab.api.apply_job(_job(lab, "ring", order))
    assert resp.pairs_placed == 8 and resp.max_utilization == pytest.approx(RATE / BW, rel=0.01)
    rules = _job_rules(lab)
    # Before the first packet: every leaf holds its pairs' ingress rules; the spines
    # carry the pairs by their host routes and hold none.
    assert all(rules[f"leaf{j}"] > 0 for j in range(1, 5)), rules
    assert rules["spine1"] == rules["spine2"] == 0, rules
    before = _packet_ins(lab)
    run = lab.start_flows(flows, duration=SECONDS)
    results = lab.finish(run)
    after = _packet_ins(lab)
    bound = job_bound(
        flows, spines=2, leaves=4, hosts_per_leaf=2, link_bps=BW * 1e6, nic_bps=BW * 1e6
    )
    ratio = _delivered(results) / bound
    print(f"\njob ring: {ratio:.3f} of the bound ({bound / 1e6:.0f} Mbit/s); rules {rules}")
    print(f"delivered per flow: {_shares(results)}")
    assert after - before <= 2, (
        f"{after - before} IPv4 packet-ins: job traffic reached the controller"
    )
    _assert_flows_fared_alike(results, "the declared ring")
    assert ratio >= MIN_OF_BOUND, f"the declared ring delivered {ratio:.3f} of its bound"
    paths = {tuple(p.path) for p in lab.api.get_job("ring").pairs}
    uplinks = [p[:2] for p in paths if len(p) == 3]
    assert len(uplinks) == len(set(uplinks)) == 8  # no two flows share a leaf uplink
    lab.daemon.assert_clean_log()


def test_a_job_is_re_solved_when_a_spine_uplink_fails_and_keeps_the_new_bound(lab: Lab) -> None:
    # One flow per leaf crosses the fabric (the other stays inside the leaf), so a
    # collision-free placement exists with one uplink gone: the new bound is the old.
    order = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (4, 1), (4, 2)]
    flows = _ring(order)
    lab.api.apply_job(_job(lab, "ring", order))
    crossing = [p for p in lab.api.get_job("ring").pairs if len(p.path) == 3]
    victim = next(p for p in crossing if p.path[0] == "leaf1")
    spine = victim.path[1]
    run = lab.start_flows(flows, duration=SECONDS)
    time.sleep(3.0)
    lab.fab.set_link("leaf1", spine, up=False)
    wait_until(
        lambda: all(
            spine not in p.path or p.path[0] != "leaf1" for p in lab.api.get_job("ring").pairs
        ),
        timeout=5,
        what="the job re-solved around the failed uplink",
    )
    results = lab.finish(run)
    down = [(1, int(spine[-1]))]
    bound = _bound(flows, down=down)
    ratio = _delivered(results) / bound
    lost = sum(r["sink"]["flows"][str(r["flow"].tag)]["lost"] for r in results)
    print(f"\njob after a failed uplink: {ratio:.3f} of the new bound; {lost} packets lost")
    _assert_flows_fared_alike(results, "the ring after the failure")
    assert ratio >= MIN_OF_BOUND, f"{ratio:.3f} of the new bound after the failure"
    moved = [e for e in lab.api.get_job("ring").pairs if e.path and e.path[0] == "leaf1"]
    assert moved and all(spine not in p.path for p in moved if len(p.path) == 3)
    lab.daemon.assert_clean_log()


def test_deleting_a_job_removes_every_rule_from_the_switches(lab: Lab) -> None:
    order = [(1, 1), (2, 1), (3, 1), (4, 1)]
    lab.api.apply_job(_job(lab, "short", order))
    assert sum(_job_rules(lab).values()) > 0
    lab.api.delete_job("short")
    wait_until(lambda: sum(_job_rules(lab).values()) == 0, timeout=5, what="every job rule removed")
