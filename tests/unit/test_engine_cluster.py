"""The engine as a cluster member: a standby writes nothing, a takeover is a restart that
rewrites nothing, a leader that may not program stops, and standbys follow the store."""

from __future__ import annotations

from collections import Counter

from apilab import roce_policy
from enginelab import EngineLab
from synthetic import leaf_spine

from controller.engine.outputs import RoleRequest, TableRead
from controller.store.policies import PolicyView

CHANGES = ("FlowAdd", "FlowDelete", "GroupAdd", "GroupModify", "GroupDelete", "MeterAdd")


def changes(before: Counter[str], after: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in (after - before).items() if k in CHANGES}


def standby_lab(*, policies: bool = True) -> EngineLab:
    lab = EngineLab(leaf_spine(2, 2), policies=(roce_policy(),) if policies else ())
    lab.engine.join_cluster(may_program=lambda now: True)
    return lab


def test_a_standby_claims_slave_and_reads_and_writes_nothing() -> None:
    lab = standby_lab()
    for dpid in sorted(lab.fabric.names):
        out = lab.connect(dpid)
        assert out.requests == [RoleRequest(dpid, master=False, generation=0)]
    lab.run_for(5.0)
    assert set(lab.roles.values()) == {"slave"}
    assert sum(lab.fake.mods().values()) == 0
    assert not lab.net.topo.switches and not lab.engine.writes_allowed(lab.now)


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
    churn = changes(before, lab.fake.mods())
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
    assert changes(before, lab.fake.mods()) == {}
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
