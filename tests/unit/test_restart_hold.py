"""A cold restart holds default forwarding until discovery found the fabric (restarthold).

Compiled link by link as discovery finds them, the routes of a restarted
controller pass through partial next-hop sets on their way back to what the
switches still hold; held and compiled once, they come back as they were.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from enginelab import EngineLab
from synthetic import leaf_spine

from controller.app.clock import Clock
from controller.app.publisher import Publisher
from controller.concurrency.eventbus import EventBus
from controller.engine.restarthold import QUIET_INTERVALS, RestartHold, holds_host_routes
from controller.flowprog.entries import Cookie, CookieKind, FlowEntry, Match, Output
from controller.flowprog.tables import SwitchTable
from controller.store.documents import StoreClosed, StoreError
from controller.store.memory import MemoryStore
from controller.store.uplinks import UplinkView


def _table(kind: CookieKind | None) -> SwitchTable:
    table = SwitchTable()
    if kind is not None:
        match = Match.of(eth_dst="02:00:00:00:00:01")
        entry = FlowEntry(10, match, (Output(1),), cookie=Cookie(kind, 7).encode())
        table.flows[entry.key] = entry
    return table


ROUTES, TRAPS, EMPTY = _table(CookieKind.HOST_ROUTE), _table(CookieKind.BASE), _table(None)


def _publishing(lab: EngineLab, uplinks: UplinkView) -> Publisher:
    """A publisher of ``lab``'s engine saving lost uplinks to ``uplinks``, absorbing every
    output as the hub's does."""
    publisher = Publisher(
        lab.engine, bus=EventBus(), metrics=lab.metrics, clock=Clock(), uplinks=uplinks
    )
    lab.on_output = publisher.absorb
    return publisher


def _settle(lab: EngineLab) -> None:
    """Past a restart's hold (three probe intervals) and the warm-up."""
    lab.run_for(QUIET_INTERVALS * lab.net.config.lldp_interval_s + lab.net.config.warmup_s)


def test_host_routes_of_this_controller_are_what_marks_a_restart() -> None:
    assert holds_host_routes(ROUTES)
    assert not holds_host_routes(TRAPS) and not holds_host_routes(EMPTY)
    foreign = SwitchTable()
    entry = FlowEntry(10, Match.of(eth_type=0x0800), (Output(2),), cookie=0x02 << 48)
    foreign.flows[entry.key] = entry  # kind 2 without this controller's tag
    assert not holds_host_routes(foreign)


def test_the_first_read_decides_and_later_reads_prolong_up_to_the_cap() -> None:
    hold = RestartHold()
    assert hold.switch_read(ROUTES, now=10.0, interval=1.0, cap_s=12.0)
    assert hold.until == 10.0 + QUIET_INTERVALS
    assert not hold.switch_read(EMPTY, now=11.0, interval=1.0, cap_s=12.0)  # prolongs
    assert hold.until == 11.0 + QUIET_INTERVALS
    assert not hold.switch_read(ROUTES, now=20.0, interval=2.0, cap_s=12.0)
    assert hold.until == 22.0  # capped: 12 s after the first read
    assert not hold.due(21.9) and hold.due(22.0) and not hold.due(23.0)  # once
    assert not hold.switch_read(ROUTES, now=30.0, interval=1.0, cap_s=12.0)  # decided
    assert hold.until is None


def test_a_switch_without_host_routes_leaves_the_decision_to_the_next_reads() -> None:
    """A spine that lost every link before the restart holds no route; read first, it
    must not make the restart a first start."""
    hold = RestartHold()
    assert not hold.switch_read(EMPTY, now=10.0, interval=1.0, cap_s=12.0)
    assert not hold.switch_read(EMPTY, now=12.5, interval=1.0, cap_s=12.0)  # not quiet yet
    assert hold.until is None
    assert hold.switch_read(ROUTES, now=15.0, interval=1.0, cap_s=12.0)
    assert hold.until == 15.0 + QUIET_INTERVALS
    assert not hold.switch_read(EMPTY, now=20.0, interval=1.0, cap_s=12.0)  # prolongs
    assert hold.until == 22.0  # capped: 12 s after the first read, not the deciding one


def test_a_first_start_or_a_disabled_hold_never_holds() -> None:
    fresh = RestartHold()
    assert not fresh.switch_read(EMPTY, now=0.0, interval=1.0, cap_s=12.0)
    # Reads quiet for three probe intervals: a switch back later is no restart.
    assert not fresh.switch_read(ROUTES, now=QUIET_INTERVALS, interval=1.0, cap_s=12.0)
    assert not fresh.switch_read(ROUTES, now=3.5, interval=1.0, cap_s=12.0)  # decided
    late = RestartHold()  # reads never quiet, but past the cap
    for t in range(12):
        assert not late.switch_read(EMPTY, now=float(t), interval=1.0, cap_s=12.0)
    assert not late.switch_read(ROUTES, now=12.0, interval=1.0, cap_s=12.0)
    assert fresh.until is None and not fresh.due(100.0)
    off = RestartHold(enabled=False)
    assert not off.switch_read(ROUTES, now=0.0, interval=1.0, cap_s=12.0)
    assert off.until is None


@pytest.mark.parametrize("spines", [2, 4, 8])
def test_a_lone_restart_rewrites_nothing_the_switches_hold(spines: int) -> None:
    """Not even a transient change (8 x 4 without the hold: hundreds of flow adds and
    deletes as every leaf's spread set grows back spine by spine)."""
    lab = EngineLab(leaf_spine(spines, 4)).ready()
    tables = lab.fake.hashes()
    lab.restart(hosts=list(lab.net.topo.hosts.values()))
    before = lab.fake.mods()
    for dpid in sorted(lab.fabric.names):
        lab.connect(dpid)
        assert lab.undelivered() == []  # the switches forward by what they hold
    _settle(lab)
    assert lab.changes_since(before) == {}
    assert lab.fake.hashes() == tables
    assert lab.undelivered() == []
    assert len(lab.net.topo.links) == len(lab.fake.links)


@pytest.mark.parametrize("spines", [4, 8])
def test_a_lone_restart_after_a_lost_spine_rewrites_nothing(spines: int) -> None:
    """Every leaf's spread set is named after its cabled uplinks, the lost one too:
    stored by the publisher, the restarted controller names them the same (without:
    680 flow and 44 group mods on 4 x 4, every route renamed)."""
    lab = EngineLab(leaf_spine(spines, 4)).ready()
    stored = UplinkView(lab.store)
    publisher = _publishing(lab, stored)
    spine = f"spine{spines}"
    for leaf in lab.fabric.leaves:
        lab.set_cable(leaf, spine, up=False)
    lab.run_for(2.0)
    publisher.publish()
    lost = {lab.dpid(leaf): ((spines, lab.dpid(spine)),) for leaf in lab.fabric.leaves}
    assert stored.lost() == lost  # leaf i's uplink p goes to spine p
    assert lab.metrics.registry.get_sample_value("fabric_uplinks_lost") == len(lab.fabric.leaves)
    tables = lab.fake.hashes()
    lab.restart(hosts=list(lab.net.topo.hosts.values()))
    publisher = _publishing(lab, stored)
    before = lab.fake.mods()
    # The lost spine first: it holds no route, the leaves' tables tell the restart.
    for dpid in sorted(lab.fabric.names, key=lambda d: d != lab.dpid(spine)):
        lab.connect(dpid)
        publisher.publish()
        assert stored.lost() == lost  # what is not adopted yet is kept
    _settle(lab)
    assert lab.changes_since(before) == {}
    assert lab.fake.hashes() == tables
    assert lab.undelivered() == []
    # The spine back: its uplinks are cabled again, and no longer stored.
    for leaf in lab.fabric.leaves:
        lab.set_cable(leaf, spine, up=True)
    lab.run_for(QUIET_INTERVALS * lab.net.config.lldp_interval_s)
    publisher.publish()
    assert stored.lost() == {}
    assert lab.metrics.registry.get_sample_value("fabric_uplinks_lost") == 0
    assert len(lab.net.topo.links) == len(lab.fake.links)


@pytest.mark.parametrize(
    "cuts", [[("leaf1", "spine1")], [("leaf1", "spine1"), ("leaf2", "spine2")]]
)
def test_a_lone_restart_after_cut_cables_rewrites_nothing(cuts: list[tuple[str, str]]) -> None:
    """A leaf's own cut uplink degrades its set in place (stored, restored); the other
    leaves' sets towards it are named by their ports, and the spine's cut port is
    reported down again (not an edge port that would make the spine a leaf)."""
    lab = EngineLab(leaf_spine(4, 4)).ready()
    stored = UplinkView(lab.store)
    publisher = _publishing(lab, stored)
    for leaf, spine in cuts:
        lab.set_cable(leaf, spine, up=False)
    lab.run_for(2.0)
    publisher.publish()
    assert stored.lost() == {
        lab.dpid(leaf): ((lab.cable(leaf, spine).src.port, lab.dpid(spine)),)
        for leaf, spine in cuts
    }
    tables = lab.fake.hashes()
    lab.restart(hosts=list(lab.net.topo.hosts.values()))
    before = lab.fake.mods()
    for dpid in sorted(lab.fabric.names):
        lab.connect(dpid)
    _settle(lab)
    for leaf, spine in cuts:
        cut = lab.cable(leaf, spine).dst
        assert not lab.net.topo.switches[cut.dpid].ports[cut.port].up
    assert lab.changes_since(before) == {}
    assert lab.fake.hashes() == tables
    assert lab.undelivered() == []


def test_a_lone_restart_after_a_cut_cable_and_a_lost_spine_rewrites_nothing() -> None:
    """The sets towards the leaf behind the cut are named without the lost spine
    (lacking towards every destination): the restarted controller, given the stored
    lost uplinks, names them the same."""
    lab = EngineLab(leaf_spine(8, 4)).ready()
    stored = UplinkView(lab.store)
    publisher = _publishing(lab, stored)
    lab.set_cable("leaf1", "spine1", up=False)
    for leaf in lab.fabric.leaves:
        lab.set_cable(leaf, "spine8", up=False)
    lab.run_for(2.0)
    publisher.publish()
    tables = lab.fake.hashes()
    lab.restart(hosts=list(lab.net.topo.hosts.values()))
    publisher = _publishing(lab, stored)
    before = lab.fake.mods()
    for dpid in sorted(lab.fabric.names):
        lab.connect(dpid)
        publisher.publish()
    _settle(lab)
    assert lab.changes_since(before) == {}
    assert lab.fake.hashes() == tables
    assert lab.undelivered() == []


class _FailingStore(MemoryStore):
    """A store whose writes fail with ``failure`` while it is set."""

    failure: StoreError | None = None

    def batch(self, **writes: Any) -> int:
        if self.failure is not None:
            raise self.failure
        return super().batch(**writes)


def test_lost_uplinks_not_saved_are_saved_at_the_next_publication(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _FailingStore()
    lab = EngineLab(leaf_spine(4, 2), store=store).ready()
    publisher = _publishing(lab, UplinkView(store))
    store.failure = StoreError("etcd: unavailable")
    lab.set_cable("leaf1", "spine4", up=False)
    with caplog.at_level(logging.INFO, logger="fabricd.publisher"):
        publisher.publish()
        assert [r.levelname for r in caplog.records] == ["ERROR"]
        assert "cannot save lost uplinks: etcd: unavailable" in caplog.text
        assert UplinkView(store).lost() == {}
        caplog.clear()
        store.failure = StoreClosed("closed")  # the daemon stopping: not an error
        lab.set_cable("leaf2", "spine4", up=False)
        publisher.publish()
        assert [r.levelname for r in caplog.records] == ["INFO"]
    store.failure = None
    lab.advance(0.1)
    lab.tick()  # any output: the publisher has something to publish
    publisher.publish()
    spine4 = lab.dpid("spine4")
    assert UplinkView(store).lost() == {lab.dpid(n): ((4, spine4),) for n in ("leaf1", "leaf2")}


def test_a_leaf_back_after_a_lost_spine_gets_its_tables_as_they_were() -> None:
    """A leaf's connection drops and comes back (its flows kept): its lost uplink is
    remembered meanwhile, so its spread set has its old name and every table ends as
    it was (forgotten, the leaf's routes and set were renamed: other tables)."""
    lab = EngineLab(leaf_spine(4, 4)).ready()
    for leaf in lab.fabric.leaves:
        lab.set_cable(leaf, "spine4", up=False)
    lab.run_for(2.0)
    tables, lost = lab.fake.hashes(), lab.net.topo.all_lost_uplinks()
    leaf1 = lab.dpid("leaf1")
    assert lost[leaf1] == ((4, lab.dpid("spine4")),)
    lab.disconnect(leaf1)
    assert lab.net.lost_uplinks_to_keep() == lost  # the leaf's own kept while away
    lab.run_for(1.0)
    lab.connect(leaf1)
    _settle(lab)
    assert lab.net.topo.all_lost_uplinks() == lost
    assert lab.fake.hashes() == tables
    assert lab.undelivered() == []


def test_a_first_start_programs_forwarding_as_it_discovers() -> None:
    lab = EngineLab(leaf_spine(4, 4))
    lab.start()  # switches read, links found, edge grace over: less than the quiet time
    assert lab.now - lab.engine.started_at < QUIET_INTERVALS * lab.net.config.lldp_interval_s
    lab.learn_all()
    assert lab.undelivered() == []  # host routes went out at once: nothing held
