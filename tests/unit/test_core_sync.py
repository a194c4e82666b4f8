"""Idempotent programming: no-op refreshes, reconnects, warm-up and controller restarts."""

from __future__ import annotations

from collections import Counter

from enginelab import EngineLab
from synthetic import leaf_spine

from controller.engine.engine import EngineConfig
from controller.fabric.model import Host
from controller.flowprog.entries import (
    Bucket,
    Cookie,
    CookieKind,
    FlowEntry,
    GroupAction,
    GroupEntry,
    GroupType,
    Match,
    Output,
)
from controller.flowprog.forwarding import PRIO_HOST
from controller.flowprog.plan import FlowDelete, GroupDelete


def ready(spines: int = 2, leaves: int = 4, **config: float) -> EngineLab:
    lab = EngineLab(leaf_spine(spines, leaves), config=EngineConfig(**config))  # type: ignore[arg-type]
    lab.start()
    lab.learn_all()
    lab.run_for(lab.net.config.warmup_s)
    return lab


def test_refreshing_with_nothing_changed_programs_nothing() -> None:
    lab = ready()
    before = lab.fake.hashes()
    assert not lab.net.refresh_forwarding(now=lab.now, reason="again")
    assert not lab.net.set_traps(lab.net.traps, now=lab.now)
    assert not lab.net.set_drained([], False, now=lab.now)
    mods = lab.fake.mods()
    lab.run_for(10.0)
    assert lab.changes_since(mods) == {}
    assert lab.fake.hashes() == before


def test_a_reconnect_with_unchanged_tables_sends_no_flow_mods() -> None:
    lab = ready(packet_in_pps=100)
    before_hash, before_mods = lab.fake.hashes(), lab.fake.mods()
    for dpid in sorted(lab.fake.switches):
        out = lab.connect(dpid)
        assert out.programs == [], lab.fabric.names[dpid]
    lab.run_for(lab.net.config.warmup_s)
    assert lab.changes_since(before_mods) == {}
    assert lab.fake.hashes() == before_hash


def test_a_spine_that_drops_out_and_returns_gets_its_tables_back() -> None:
    lab = ready(3, 4)
    before = lab.fake.hashes()
    spine = lab.dpid("spine2")
    its_ports = {r for r in lab.fake.peer if r.dpid == spine}
    lab.advance(1.0)
    lab.disconnect(spine)
    lab.fake.down |= its_ports
    lab.learn_all()  # more refreshes while it is away: the fake refuses any sent to it
    assert lab.undelivered() == []
    lab.advance(1.0)
    lab.fake.down -= its_ports
    spine_mods = Counter(lab.fake.switches[spine].mods)
    lab.connect(spine)
    assert lab.undelivered() == []

    def still_delivering(lid: object) -> None:
        assert lab.undelivered() == [], f"after LLDP on {lid}"

    lab.tick(after_each=still_delivering)  # LLDP rediscovers its cables one by one
    lab.run_for(lab.net.config.warmup_s)
    assert lab.fake.hashes() == before
    # Its host routes survived the outage (fail-secure) and were never removed.
    assert (lab.fake.switches[spine].mods - spine_mods)["FlowDelete"] == 0


def test_warm_up_keeps_unexplained_entries_until_it_ends() -> None:
    lab = EngineLab(leaf_spine(2, 2))
    leaf = lab.dpid("leaf1")
    stale_group = GroupEntry(0x10ABCDEF, GroupType.SELECT, (Bucket((Output(1),), 1, 1),))
    stale_route = FlowEntry(
        PRIO_HOST,
        Match.of(eth_dst="02:00:00:00:dd:01"),
        (GroupAction(stale_group.group_id),),
        Cookie(CookieKind.HOST_ROUTE).encode(),
    )
    sw = lab.fake.switch(leaf)
    sw.groups[stale_group.group_id] = stale_group
    sw.flows[stale_route.key] = stale_route
    warm_until = lab.now + lab.net.config.warmup_s
    lab.start()
    lab.learn_all()
    assert stale_route.key in sw.flows and stale_group.group_id in sw.groups
    lab.run_for(warm_until - lab.now - 0.01)
    assert stale_route.key in sw.flows and lab.fake.mods()["FlowDelete"] == 0
    seen = len(lab.outputs)
    lab.run_for(0.02)  # the fake refuses a group delete while the route still uses it
    assert stale_route.key not in sw.flows and stale_group.group_id not in sw.groups
    cleanup = [
        op
        for out in lab.outputs[seen:]
        for p in out.programs
        for ph in p.phases
        for op in ph.ops.get(leaf, [])
    ]
    assert FlowDelete(stale_route) in cleanup and GroupDelete(stale_group) in cleanup
    assert lab.undelivered() == []


def test_a_resync_fixes_a_switch_at_once() -> None:
    lab = ready()
    leaf = lab.dpid("leaf2")
    sw = lab.fake.switches[leaf]
    before = sw.table_hash()
    junk = FlowEntry(5, Match.of(eth_type=0x86DD), (Output(1),), cookie=99)
    sw.flows[junk.key] = junk
    victim = next(e for e in sw.flows.values() if e.priority == PRIO_HOST)
    del sw.flows[victim.key]
    out = lab.net.resync(leaf, reported=sw.reported(), now=lab.now)
    lab.run(out)
    assert sw.table_hash() == before


def test_a_controller_restart_keeps_traffic_flowing_and_ends_where_it_started() -> None:
    lab = ready(2, 4)
    before = lab.fake.hashes()
    remembered = [
        Host(mac=h.mac, ipv4=h.ipv4, attach=h.attach, last_seen=0.0)
        for h in lab.net.topo.hosts.values()
    ]
    lab.restart(hosts=remembered)
    lab.advance(1.0)
    churn_before = lab.fake.mods()
    for dpid in sorted(lab.fake.switches):
        lab.connect(dpid)
        assert lab.undelivered() == [], f"after {lab.fabric.names[dpid]} reconnected"
    deletes = lab.fake.mods()["FlowDelete"]

    def still_delivering(lid: object) -> None:
        assert lab.undelivered() == [], f"after LLDP on {lid}"

    lab.tick(after_each=still_delivering)
    assert len(lab.net.topo.links) == len(lab.fake.peer)
    assert lab.fake.mods()["FlowDelete"] == deletes  # nothing the switches kept was deleted
    # What the switches kept is protected during rediscovery: the half-known
    # topology never rewrites a route (no flow churn). At most an unused group
    # for a transient detour is added and removed again.
    flow_churn = {k: v for k, v in lab.changes_since(churn_before).items() if k.startswith("Flow")}
    assert flow_churn == {}
    lab.run_for(lab.net.config.warmup_s)
    assert lab.fake.hashes() == before
    assert lab.undelivered() == []
    flow_churn = {k: v for k, v in lab.changes_since(churn_before).items() if k.startswith("Flow")}
    assert flow_churn == {}
