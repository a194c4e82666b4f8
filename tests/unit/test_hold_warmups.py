"""Held default forwarding holds the switches' warm-ups too.

A warm-up ends with a full reconcile of the switch against the desired state.
While default forwarding is held (a bulk bring-up, a takeover waiting for its
switches), the desired state has none of it: a warm-up ended then would delete
every route the switch kept. They end after the release instead, against the
whole desired state. Shown with a restarted controller that holds forwarding
while it rediscovers the links (the bulk hold), which is also what such a hold
buys: the switches' kept tables stay as they were, not one entry rewritten.
"""

from __future__ import annotations

from enginelab import EngineLab
from synthetic import leaf_spine

from controller.fabric.model import Dpid
from controller.flowprog.entries import EntryKey, FlowEntry


def tables(lab: EngineLab) -> dict[Dpid, dict[EntryKey, FlowEntry]]:
    return {d: dict(sw.flows) for d, sw in lab.fake.switches.items()}


def test_warm_ups_end_after_the_release_against_the_whole_desired_state() -> None:
    lab = EngineLab(leaf_spine(4, 4)).ready()
    before = tables(lab)
    lab.restart(hosts=list(lab.net.topo.hosts.values()))
    lab.engine.hold_forwarding()
    mods = lab.fake.mods()
    names = sorted(lab.fabric.names)
    for dpid in names[:4]:
        lab.connect(dpid)
    lab.run_for(lab.net.config.warmup_s - 1.0)
    for dpid in names[4:]:  # the others a little later
        lab.connect(dpid)
    lab.run_for(lab.net.config.warmup_s + 1.0)  # every warm-up's time is up, held
    assert lab.fake.mods() - mods == {} and tables(lab) == before

    lab.run(lab.engine.release_forwarding(now=lab.now))
    lab.run_for(1.0)  # the warm-ups end now
    # Compiled once from the whole fabric: the kept tables were right. (A restart
    # that compiles at each link found, every switch connected at once, rewrote
    # 208 flow entries and deleted as many on this fabric: partial spread sets.)
    assert lab.fake.mods() - mods == {}
    assert tables(lab) == before
    assert lab.undelivered() == []


def test_forwarding_is_compiled_when_the_last_holder_releases() -> None:
    lab = EngineLab(leaf_spine(2, 2)).ready()
    net = lab.net
    net.hold_forwarding("takeover")
    net.hold_forwarding()  # a bulk change at the same time
    assert net.refresh_forwarding(now=lab.now, reason="link-up").phases == []
    assert net.release_forwarding(now=lab.now).reason == "held"
    assert net.refresh_forwarding(now=lab.now, reason="drain").phases == []
    assert net.release_forwarding(now=lab.now, holder="takeover").reason == "drain+link-up"
    assert net.release_forwarding(now=lab.now).reason == "held"  # nothing was due
