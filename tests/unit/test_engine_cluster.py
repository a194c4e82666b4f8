"""The engine as a cluster member: a standby writes nothing, a takeover is a restart that
rewrites nothing, a leader that may not program stops, and standbys follow the store."""

from __future__ import annotations

from dataclasses import replace

import pytest
from apilab import pinned_policy, roce_policy
from enginelab import BASE_COOKIE, EngineLab
from synthetic import leaf_spine

from controller.app.clock import Clock
from controller.app.publisher import Publisher
from controller.concurrency.eventbus import EventBus
from controller.engine.outputs import (
    PortStatsRequest,
    RoleRequest,
    SlavePacketIns,
    TablePart,
    TableRead,
)
from controller.errors import InvalidArgument, Unavailable
from controller.fabric import frames
from controller.fabric.lldp_auth import LldpSigner
from controller.flowprog.forwarding import PRIO_HOST
from controller.policy.model import PolicyParams
from controller.store.policies import PolicyView
from controller.store.uplinks import UplinkView


def standby_lab(*, policies: bool = True) -> EngineLab:
    lab = EngineLab(leaf_spine(2, 2), policies=(roce_policy(),) if policies else ())
    lab.engine.join_cluster(may_program=lambda now: True)
    return lab


def test_a_standby_claims_slave_reads_ports_and_writes_nothing() -> None:
    lab = standby_lab()
    for dpid in sorted(lab.fabric.names):
        out = lab.connect(dpid)
        assert out.requests[:3] == [
            RoleRequest(dpid, master=False, generation=0),
            SlavePacketIns(dpid),  # the leader's LLDP probes, as packet-ins
            TableRead(dpid, TablePart.PORTS),
        ]
        assert not [r for r in out.requests[3:] if not isinstance(r, PortStatsRequest)]
    lab.run_for(5.0)
    assert set(lab.roles.values()) == {"slave"}
    assert sum(lab.fake.mods().values()) == 0
    assert not lab.engine.writes_allowed(lab.now)
    assert not lab.net.topo.switches  # nothing to program: the engine itself knows nothing
    observed, _ = lab.engine.visible()
    assert {sw.name for sw in observed.switches.values()} == set(lab.fabric.names.values())
    assert not observed.links  # no leader probes in this test


def test_becoming_leader_claims_master_reads_tables_and_programs() -> None:
    lab = standby_lab(policies=False)  # walks below use UDP 4791: no AI trap wanted
    for dpid in sorted(lab.fabric.names):
        lab.connect(dpid)
    out = lab.run(lab.engine.set_role("leader", generation=7, now=lab.now))
    masters = [r for r in out.requests if isinstance(r, RoleRequest)]
    assert {r.dpid for r in masters} == set(lab.fabric.names)
    assert all(r.master and r.generation == 7 for r in masters)
    assert any(isinstance(r, TableRead) for r in out.requests)
    lab.tick()
    lab.advance(lab.net.config.edge_grace_s + 0.1)
    lab.tick()
    lab.learn_all()
    lab.run_for(lab.net.config.warmup_s)
    assert lab.undelivered() == []
    assert set(lab.roles.values()) == {"master"}


def test_a_takeover_rewrites_nothing_the_old_leader_installed() -> None:
    lab = EngineLab(leaf_spine(2, 4), policies=(roce_policy(),)).ready()
    tables = lab.fake.hashes()
    hosts = list(lab.net.topo.hosts.values())
    lab.restart(hosts=hosts)  # the standby's engine, on the same store and switches
    lab.engine.join_cluster(may_program=lambda now: True)
    for dpid in sorted(lab.fabric.names):
        lab.connect(dpid)
    before = lab.fake.mods()
    lab.advance(1.0)
    lab.run(lab.engine.set_role("leader", generation=9, now=lab.now))
    lab.run_for(lab.net.config.warmup_s + 4.0)
    churn = lab.changes_since(before)
    # No rule is rewritten. (While links are rediscovered one by one, a group for a
    # partial set of next hops may be added and removed again, used by no rule.)
    assert churn.get("FlowAdd", 0) == churn.get("FlowDelete", 0) == 0, churn
    assert lab.fake.hashes() == tables
    by_tcp = [
        (s.name, d.name)
        for s in lab.hosts
        for d in lab.hosts
        if s is not d and not lab.send(s, d, ip_proto=6, tcp_src=4000, tcp_dst=80).only_to(d.port)
    ]
    assert by_tcp == []  # (UDP 4791 would meet the policy's trap, by design)


def test_a_leader_whose_lease_may_have_lapsed_writes_nothing() -> None:
    lab = EngineLab(leaf_spine(2, 2))
    valid = {"lease": True}
    lab.engine.join_cluster(may_program=lambda now: valid["lease"])
    lab.run(lab.engine.set_role("leader", generation=1, now=lab.now))
    lab.start()
    lab.learn_all()
    assert lab.engine.writes_allowed(lab.now)
    valid["lease"] = False
    before = lab.fake.mods()
    lab.set_cable("leaf1", "spine1", up=False)  # would reprogram routes
    lab.run_for(2.0)
    assert lab.changes_since(before) == {}
    out = lab.run(lab.engine.set_role("standby", generation=2, now=lab.now))
    assert {(r.dpid, r.master) for r in out.requests if isinstance(r, RoleRequest)} == {
        (d, False) for d in lab.fabric.names
    }


def test_a_standby_follows_what_the_leader_stored() -> None:
    lab = standby_lab()
    lab.run(lab.engine.set_role("standby", generation=3, now=lab.now))
    assert [p.name for p in lab.engine.policies.book.all()] == ["roce"]
    other = PolicyView(lab.store)  # the leader, writing to the shared store
    other.put(roce_policy().__class__(**{**roce_policy().__dict__, "name": "more", "priority": 7}))
    lab.engine.store_changed()
    lab.tick()
    assert sorted(p.name for p in lab.engine.policies.book.all()) == ["more", "roce"]


def test_a_standby_reads_the_store_at_once_when_asked_and_a_leader_ignores_it() -> None:
    lab = standby_lab()
    lab.run(lab.engine.set_role("standby", generation=3, now=lab.now))
    PolicyView(lab.store).put(
        roce_policy().__class__(**{**roce_policy().__dict__, "name": "more", "priority": 7})
    )
    # No watch event yet, no tick: the relay of a write asks the standby to catch up.
    lab.run(lab.engine.follow_store(now=lab.now))
    assert sorted(p.name for p in lab.engine.policies.book.all()) == ["more", "roce"]
    lab.run(lab.engine.set_role("leader", generation=4, now=lab.now))
    net = lab.engine.net
    PolicyView(lab.store).put(
        roce_policy().__class__(**{**roce_policy().__dict__, "name": "late", "priority": 9})
    )
    assert not lab.engine.follow_store(now=lab.now)
    assert lab.engine.net is net  # a leader is the writer: nothing to rebuild
    assert "late" not in {p.name for p in lab.engine.policies.book.all()}


def leader_probes(lab: EngineLab, signer: LldpSigner) -> None:
    """The leader's LLDP probe out of every cable end, as this (slave) engine receives it."""
    for src, peer in sorted(lab.fake.peer.items()):
        if src in lab.lldp_lost:
            continue
        port = next(p for p in lab.ports[src.dpid] if p.port_no == src.port)
        frame = frames.build_lldp(
            signer, dpid=src.dpid, port=src.port, hw_addr=port.hw_addr, now=lab.now
        )
        lab.packet_in(peer, frame, cookie=BASE_COOKIE)


def observe(lab: EngineLab, signer: LldpSigner, seconds: float) -> None:
    for _ in range(int(seconds / 0.5)):
        leader_probes(lab, signer)
        lab.advance(0.5)
        lab.tick()


def test_a_standby_learns_links_from_the_leaders_probes_and_forgets_silent_ones() -> None:
    lab = standby_lab()
    for dpid in sorted(lab.fabric.names):
        lab.connect(dpid)
    shared = lab.engine.signer  # the cluster's key (the store's shared secret)
    observe(lab, LldpSigner(b"x" * 32), 2.0)  # another cluster's probes prove nothing
    observed, _ = lab.engine.visible()
    assert not observed.links
    observe(lab, shared, 2.0)
    assert sorted(observed.links) == lab.fake.links
    spine_port = lab.cable("leaf1", "spine1").dst
    lab.lldp_lost.add(spine_port)  # the probes out of spine1 toward leaf1 stop arriving
    observe(lab, shared, lab.net.config.link_timeout_s + 1.0)
    assert sorted(observed.links) == [lid for lid in lab.fake.links if lid.src != spine_port]
    assert sum(lab.fake.mods().values()) == 0 and not lab.sent  # it never answered anything


@pytest.mark.parametrize("spines", [2, 4, 8])
def test_a_warm_standby_takes_over_with_links_rates_and_trusted_edges_at_once(
    spines: int,
) -> None:
    """Not even a transient change: forwarding is compiled once every switch is read
    again. Switch by switch, each spine read would give every leaf a partial spread
    set (1,112 flow adds and as many deletes at 8 x 4 before that hold)."""
    lab = EngineLab(leaf_spine(spines, 4), policies=(roce_policy(),)).ready()
    tables = lab.fake.hashes()
    hosts = list(lab.net.topo.hosts.values())
    leader_signer = lab.engine.signer
    lab.restart(hosts=hosts)  # the standby's engine, on the same store and switches
    lab.engine.signer = leader_signer  # one cluster, one key
    lab.engine.join_cluster(may_program=lambda now: True)
    for dpid in sorted(lab.fabric.names):
        lab.connect(dpid)
    observe(lab, leader_signer, 4.0)  # port counters polled meanwhile too
    before = lab.fake.mods()
    lab.lldp_lost |= set(lab.fake.peer)  # from here on no probe arrives at all
    lab.run(lab.engine.set_role("leader", generation=9, now=lab.now))
    # Right after the table reads, before any probe of its own: the whole fabric.
    assert sorted(lab.net.topo.links) == lab.fake.links
    edge = lab.hosts[0].port
    assert lab.net.trusted_edge(edge, lab.now)
    uplink = lab.cable("leaf1", "spine1").src
    assert lab.engine.monitor.rates.latest(uplink) is not None
    assert lab.fake.hashes() == tables
    assert lab.changes_since(before) == {}  # not even a transient group
    # Remembered links are proven by probes like any other: silence expires them.
    lab.run_for(lab.net.config.link_timeout_s + 1.0)
    assert not lab.net.topo.links


def test_a_new_leader_accepts_names_it_saw_as_a_standby_before_reading_the_switches() -> None:
    """Between the takeover and the end of its table reads, the new leader's own topology
    holds only the switches read so far; commands naming the others are checked against
    what it saw as a standby, and that view is dropped once every switch is read."""
    lab = EngineLab(leaf_spine(2, 2), policies=(roce_policy(),)).ready()
    leader_signer = lab.engine.signer
    lab.restart(hosts=list(lab.net.topo.hosts.values()))
    lab.engine.signer = leader_signer
    lab.engine.join_cluster(may_program=lambda now: True)
    for dpid in sorted(lab.fabric.names):
        lab.connect(dpid)
    observe(lab, leader_signer, 4.0)
    reads = lab.engine.set_role("leader", generation=9, now=lab.now)  # not answered yet
    assert not lab.net.topo.switches
    pin = replace(pinned_policy(), params=PolicyParams())
    result, out = lab.engine.apply_policy(pin, dry_run=False, expected_version=0, now=lab.now)
    assert result.created and lab.engine.policies.get(pin.name).version == result.policy.version
    cable = lab.cable("leaf1", "spine2")
    drained, _ = lab.engine.drain("leaf1-spine2", drained=True, now=lab.now)
    back = lab.cable("spine2", "leaf1")
    assert drained.links == tuple(
        f"{a}/{lid.src.port}->{b}/{lid.dst.port}"
        for a, b, lid in sorted([("leaf1", "spine2", cable), ("spine2", "leaf1", back)])
    )
    with pytest.raises(Unavailable, match=r"pinned_path\[1\]: unknown switch 'spine9' \(yet"):
        lab.engine.apply_policy(
            replace(pin, name="other", priority=201, pinned_path=("leaf1", "spine9", "leaf2")),
            dry_run=False,
            expected_version=0,
            now=lab.now,
        )
    lab.run(reads)
    lab.run(out)
    lab.run_for(1.0)
    assert lab.engine.witnessed() == ()
    lab.run_for(lab.net.config.link_timeout_s + lab.net.config.warmup_s)  # settled
    assert {cable, back} <= lab.net.topo.drained and lab.net.topo.links[cable].drained
    with pytest.raises(InvalidArgument, match="unknown switch 'leaf9'"):
        lab.engine.apply_policy(
            replace(pin, pinned_path=("leaf9",)), dry_run=True, expected_version=None, now=lab.now
        )


def test_a_takeover_keeps_the_routes_of_leaves_that_lost_an_uplink() -> None:
    """The standby saw a spine go: its leaves' sets are degraded in place, as the
    old leader's would be, and no route is renamed at the takeover."""
    lab = EngineLab(leaf_spine(4, 4), policies=(roce_policy(),)).ready()
    hosts = list(lab.net.topo.hosts.values())
    leader_signer = lab.engine.signer
    lab.restart(hosts=hosts)
    lab.engine.signer = leader_signer
    lab.engine.join_cluster(may_program=lambda now: True)
    for dpid in sorted(lab.fabric.names):
        lab.connect(dpid)
    observe(lab, leader_signer, 4.0)
    spine1 = lab.dpid("spine1")
    lab.disconnect(spine1)  # seen by the standby only: the switches keep their tables
    observed, _ = lab.engine.visible()
    leaf1 = lab.dpid("leaf1")
    assert [port for port, spine in observed.lost_uplinks(leaf1)] == [
        lab.cable("leaf1", "spine1").src.port
    ]
    routes = {d: host_routes(lab, d) for d in lab.fabric.names if d != spine1}
    before = lab.fake.mods()
    lab.run(lab.engine.set_role("leader", generation=9, now=lab.now))
    lab.run_for(lab.net.config.warmup_s + 4.0)
    assert {d: host_routes(lab, d) for d in routes} == routes  # none renamed
    churn = lab.changes_since(before)
    assert churn.get("FlowDelete", 0) == 0, churn  # the sets' parents stay in use
    # Each leaf gains its moved buckets (16 over 4 spines: spine1's 4 go elsewhere,
    # for UDP and TCP) and the other traffic's entry, applied twice; no class trap on
    # the port that faced spine1 (up without a link, but a lost uplink, not an edge
    # port), and no failover chain (its parent's serve the moved buckets).
    assert churn["FlowAdd"] == 2 * 4 * (2 * 4 + 1), churn
    assert churn["GroupAdd"] == 4, churn  # each leaf's SELECT group for other traffic
    lost = [
        (s.name, d.name, p)
        for s in lab.hosts
        for d in lab.hosts
        for p in range(4000, 4064, 7)  # several buckets (UDP 4791 meets the policy's trap)
        if s is not d and not lab.send(s, d, ip_proto=6, tcp_src=p, tcp_dst=80).only_to(d.port)
    ]
    assert lost == []


def test_a_standby_saves_no_lost_uplink_and_a_new_leader_saves_what_it_knows() -> None:
    """A standby's store is as of its last reload: saving its view could undo what the
    leader wrote since. Leader, it saves the uplinks its standby view saw lost, with
    the stored ones of switches it has not seen."""
    lab = EngineLab(leaf_spine(4, 2), policies=(roce_policy(),)).ready()
    leader_signer = lab.engine.signer
    lab.restart(hosts=list(lab.net.topo.hosts.values()))
    lab.engine.signer = leader_signer
    lab.engine.join_cluster(may_program=lambda now: True)
    stored = UplinkView(lab.store)
    publisher = Publisher(
        lab.engine, bus=EventBus(), metrics=lab.metrics, clock=Clock(), uplinks=stored
    )
    lab.on_output = publisher.absorb
    for dpid in sorted(lab.fabric.names):
        lab.connect(dpid)
    observe(lab, leader_signer, 4.0)
    spine1 = lab.dpid("spine1")
    lab.disconnect(spine1)
    # The leader's, of a switch this node never saw: read by this node, then more.
    stored.save({0xABC: ((3, 0xDEF),)})
    lab.run(lab.engine.follow_store(now=lab.now))
    elsewhere = {0xABC: ((3, 0xDEF),), 0xABD: ((3, 0xDEF),)}
    stored.save(elsewhere)
    publisher.publish()
    assert stored.lost() == elsewhere
    lab.run(lab.engine.set_role("leader", generation=9, now=lab.now))
    lab.run_for(lab.net.config.warmup_s + 4.0)
    publisher.publish()
    seen = {
        lab.dpid(leaf): ((lab.cable(leaf, "spine1").src.port, spine1),)
        for leaf in lab.fabric.leaves
    }
    assert stored.lost() == {**elsewhere, **seen}


def host_routes(lab: EngineLab, dpid: int) -> dict[object, object]:
    flows = lab.fake.switches[dpid].flows
    return {k: e for k, e in flows.items() if e.table_id == 0 and e.priority == PRIO_HOST}
