"""Declared jobs in the engine: joint placement, rules before the first packet, re-solving.

Packets are walked through the fake switches' tables: a job's traffic must
follow the placed path and never meet a trap to the controller.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections import Counter
from dataclasses import replace

import pytest
from apilab import pinned_policy, roce_policy
from enginelab import EngineLab
from synthetic import leaf_spine

from controller.engine.engine import EngineConfig
from controller.errors import AlreadyExists, InvalidArgument
from controller.fabric.model import Dpid
from controller.flowprog.entries import Cookie, CookieKind
from controller.jobs.model import Job, Pattern
from controller.policy.model import FlowMatch, PortRange
from controller.telemetry import CapacityConfig

ROCE = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),))


def lab(spines: int = 2, leaves: int = 4) -> EngineLab:
    cfg = EngineConfig(capacity=CapacityConfig.from_config(100.0, {}), default_demand_bps=100e6)
    return EngineLab(leaf_spine(spines, leaves), config=cfg, policies=(roce_policy(),)).ready()


def apply(lab: EngineLab, job: Job) -> Job:
    result, out = lab.engine.apply_job(job, dry_run=False, expected_version=None, now=lab.now)
    lab.run(out)
    return result.job


def job_entries(lab: EngineLab) -> list[tuple[Dpid, object]]:
    return [
        (dpid, e)
        for dpid, sw in lab.fake.switches.items()
        for e in sw.flows.values()
        if (c := Cookie.decode(e.cookie)) is not None and c.kind is CookieKind.JOB
    ]


def paths(lab: EngineLab, name: str) -> dict[tuple[str, str], tuple[str, ...]]:
    view = lab.engine.jobs.view_of(name)
    return {(p.src, p.dst): p.path for p in view.pairs}


def ring(lab: EngineLab, name: str = "ring", **kw: object) -> Job:
    hosts = tuple(h.ip for h in lab.hosts)  # two hosts per leaf, leaves in order
    return Job(name, hosts, ROCE, **kw)  # type: ignore[arg-type]


def test_a_ring_gets_links_of_its_own_and_rules_before_any_packet() -> None:
    lab_ = lab()
    job = apply(lab_, ring(lab_))
    assert lab_.notices("job-placed") == ["ring"]
    placed = paths(lab_, "ring")
    assert len(placed) == 8 and all(placed.values())
    # No leaf sends more flows up than it has spines: every flow has its links alone.
    uplinks = Counter((p[0], p[1]) for p in placed.values() if len(p) == 3)
    downlinks = Counter((p[1], p[2]) for p in placed.values() if len(p) == 3)
    assert max(uplinks.values()) == 1 and max(downlinks.values()) == 1
    by_ip = {h.ip: h for h in lab_.hosts}
    for (src, dst), path in placed.items():
        walk = lab_.send(by_ip[src], by_ip[dst], udp_src=50000 + len(src), udp_dst=4791)
        assert walk.only_to(by_ip[dst].port) and not walk.reached_controller
        assert {tuple(lab_.fabric.names[d] for d in p) for p in walk.paths} == {path}
    assert job.version >= 1
    assert lab_.engine.jobs.view_of("ring").pairs[0].placed


def test_another_port_of_the_same_hosts_still_meets_the_trap() -> None:
    lab_ = lab()
    apply(lab_, ring(lab_))
    src, dst = lab_.hosts[0], lab_.hosts[1]
    walk = lab_.send(src, dst, udp_dst=4792)  # not the job's transport
    assert not walk.reached_controller  # default forwarding, no trap for 4792 either
    other = lab_.send(lab_.hosts[0], lab_.hosts[4], udp_dst=4791)  # not a pair of the ring
    assert other.reached_controller  # the policy's class trap: placed per flow


def test_a_failed_uplink_moves_only_the_pairs_that_used_it() -> None:
    lab_ = lab()
    apply(lab_, ring(lab_))
    before = paths(lab_, "ring")
    leaf, spine = next(p for p in before.values() if len(p) == 3)[:2]
    lab_.set_cable(leaf, spine, up=False)
    after = paths(lab_, "ring")
    moved = {k for k in before if before[k] != after[k]}
    cable = {(leaf, spine), (spine, leaf)}
    crossed = {k for k, p in before.items() if cable & set(itertools.pairwise(p))}
    assert moved == crossed and moved
    assert not any(cable & set(itertools.pairwise(after[k])) for k in after)
    assert lab_.notices("job-replaced")
    by_ip = {h.ip: h for h in lab_.hosts}
    for src, dst in after:
        assert lab_.send(by_ip[src], by_ip[dst], udp_dst=4791).only_to(by_ip[dst].port)


def test_deleting_a_job_removes_every_rule_it_installed() -> None:
    lab_ = lab()
    apply(lab_, ring(lab_))
    # One rule per pair, at its ingress: transit hops ride the host routes.
    pairs = paths(lab_, "ring")
    assert sorted(lab_.name_of[d] for d, _ in job_entries(lab_)) == sorted(
        p[0] for p in pairs.values()
    )
    version, out = lab_.engine.delete_job("ring", expected_version=None, now=lab_.now)
    lab_.run(out)
    assert job_entries(lab_) == []
    assert lab_.notices("job-deleted") == ["ring"]
    assert lab_.engine.jobs.jobs() == []
    assert version >= 1


def test_unknown_hosts_and_claimed_pairs_are_refused_without_change() -> None:
    lab_ = lab()
    with pytest.raises(InvalidArgument) as err:
        apply(lab_, Job("bad", (lab_.hosts[0].ip, "10.9.9.9"), ROCE))
    assert err.value.field == "hosts[1]"
    apply(lab_, ring(lab_))
    tables = lab_.fake.hashes()
    with pytest.raises(AlreadyExists):
        apply(lab_, ring(lab_, name="copy"))
    assert lab_.fake.hashes() == tables and [j.name for j in lab_.engine.jobs.jobs()] == ["ring"]


def test_a_higher_priority_pinned_policy_keeps_its_pairs() -> None:
    lab_ = lab()
    src = lab_.hosts[0]
    pinned = replace(
        pinned_policy(),
        match=(
            replace(
                pinned_policy().match[0],
                src_hosts=(ipaddress.IPv4Network(f"{src.ip}/32"),),
                dscp=(),
            ),
        ),
        pinned_path=("leaf1", "spine2", "leaf2"),
        priority=2000,
    )
    result, out = lab_.engine.apply_policy(
        pinned, dry_run=False, expected_version=None, now=lab_.now
    )
    lab_.run(out)
    apply(lab_, ring(lab_))
    view = lab_.engine.jobs.view_of("ring")
    mine = [p for p in view.pairs if p.src == src.ip]
    assert mine and all(p.path == () and "nccl-pinned" in p.note for p in mine)
    (conflict,) = view.conflicts
    assert conflict.policy == "nccl-pinned" and not conflict.job_wins
    # Its traffic meets the pinned policy's trap, not a job rule.
    dst = next(h for h in lab_.hosts if h.ip == mine[0].dst)
    assert lab_.send(src, dst, udp_dst=4791).reached_controller
    del result


@pytest.mark.parametrize("spines", [2, 4, 8])
def test_a_restarted_engine_keeps_the_job_and_its_plan(spines: int) -> None:
    """Default forwarding is held over the restart (the switches hold its routes) and the
    job re-solved once the fabric settled: not one rule differs, on any spine count."""
    lab_ = lab(spines)
    apply(lab_, ring(lab_, pattern=Pattern.ALL_TO_ALL, demand_mbps=10.0))
    before = paths(lab_, "ring")
    tables = lab_.fake.hashes()
    lab_.restart(hosts=list(lab_.net.topo.hosts.values()))
    for dpid in sorted(lab_.fabric.names):
        lab_.connect(dpid)
    lab_.run_for(6.0)  # discovery and warm-up
    assert paths(lab_, "ring") == before
    assert lab_.fake.hashes() == tables  # nothing rewritten: same plan, same rules


def test_a_spine_repairs_a_failed_downlink_for_the_jobs_pairs_before_the_controller() -> None:
    lab_ = lab()
    apply(lab_, ring(lab_))
    by_ip = {h.ip: h for h in lab_.hosts}
    src, dst, path = next(
        (by_ip[s], by_ip[d], p) for (s, d), p in paths(lab_, "ring").items() if len(p) == 3
    )
    # The spine's port down to the egress leaf dies; the controller has not heard yet.
    down = lab_.cable(path[1], path[2])
    lab_.fake.down.add(down.src)
    walk = lab_.send(src, dst, udp_dst=4791, live_select=True)
    assert walk.only_to(dst.port), walk.terminals  # bounced back and up another spine
