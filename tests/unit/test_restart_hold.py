"""A cold restart holds default forwarding until discovery found the fabric (restarthold).

Compiled link by link as discovery finds them, the routes of a restarted
controller pass through partial next-hop sets on their way back to what the
switches still hold; held and compiled once, they come back as they were.
"""

from __future__ import annotations

import pytest
from enginelab import EngineLab
from synthetic import leaf_spine

from controller.engine.restarthold import QUIET_INTERVALS, RestartHold, holds_host_routes
from controller.flowprog.entries import Cookie, CookieKind, FlowEntry, Match, Output
from controller.flowprog.tables import SwitchTable


def _table(kind: CookieKind | None) -> SwitchTable:
    table = SwitchTable()
    if kind is not None:
        match = Match.of(eth_dst="02:00:00:00:00:01")
        entry = FlowEntry(10, match, (Output(1),), cookie=Cookie(kind, 7).encode())
        table.flows[entry.key] = entry
    return table


ROUTES, TRAPS, EMPTY = _table(CookieKind.HOST_ROUTE), _table(CookieKind.BASE), _table(None)


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


def test_a_first_start_or_a_disabled_hold_never_holds() -> None:
    fresh = RestartHold()
    assert not fresh.switch_read(EMPTY, now=0.0, interval=1.0, cap_s=12.0)
    assert not fresh.switch_read(ROUTES, now=1.0, interval=1.0, cap_s=12.0)  # decided
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
    lab.run_for(QUIET_INTERVALS * lab.net.config.lldp_interval_s + lab.net.config.warmup_s)
    assert lab.changes_since(before) == {}
    assert lab.fake.hashes() == tables
    assert lab.undelivered() == []
    assert len(lab.net.topo.links) == len(lab.fake.links)


def test_a_first_start_programs_forwarding_as_it_discovers() -> None:
    lab = EngineLab(leaf_spine(4, 4))
    lab.start()  # switches read, links found, edge grace over: less than the quiet time
    assert lab.now - lab.engine.started_at < QUIET_INTERVALS * lab.net.config.lldp_interval_s
    lab.learn_all()
    assert lab.undelivered() == []  # host routes went out at once: nothing held
