"""LLDP discovery paced by what a round of probes costs the hub (lldp_budget).

At 64 x 512 a round (65,536 probes built and read back) costs the hub
~1.5-2 s: with the default one-second interval discovery would take all of
it. Rounds are spaced to keep discovery within its budget; what is counted in
intervals (a link's expiry, an edge port's grace) stretches with them, so a
healthy link never expires between two stretched rounds.
"""

from __future__ import annotations

import pytest
from enginelab import BASE_COOKIE, EngineLab
from synthetic import leaf_spine
from test_poll_pacing import WorkClock

from controller.engine.config import EngineConfig
from controller.engine.discovery import LldpPacing
from controller.fabric import frames
from controller.fabric.model import Port, PortRef


def pacing(**kw: float) -> LldpPacing:
    return LldpPacing(**{"interval": 1.0, "budget": 0.2, "max_interval": 30.0, **kw})


def rounds(p: LldpPacing, work: list[float]) -> None:
    """Rounds go out, each followed by ``work`` seconds of building and reading."""
    for w in work:
        p.round_starts()
        p.work(w / 2)
        p.work(w / 2)


def test_a_round_within_the_budget_keeps_the_configured_interval() -> None:
    p = pacing()
    rounds(p, [0.1, 0.2, 0.2])
    assert p.interval == 1.0 and p.round_work == pytest.approx(0.2)
    assert p.stretched(3.5) == 3.5


def test_an_expensive_round_stretches_the_interval_and_what_counts_in_intervals() -> None:
    p = pacing()
    rounds(p, [1.6])
    assert p.interval == 1.0  # the first round's work is not in before the next starts
    p.round_starts()
    assert p.round_work == pytest.approx(1.6) and p.interval == pytest.approx(8.0)
    assert p.stretched(3.5) == pytest.approx(28.0) and p.stretched(2.0) == pytest.approx(16.0)


def test_the_stretch_is_bounded_settles_and_is_undone_when_rounds_get_cheap() -> None:
    p = pacing(max_interval=5.0)
    rounds(p, [4.0, 4.0])
    assert p.interval == 5.0  # 20 s wanted, 5 s at most
    rounds(p, [0.8, 0.85])
    assert p.interval == pytest.approx(4.0)  # 0.8 / 0.2
    rounds(p, [0.01])
    assert p.interval == pytest.approx(4.0)  # 0.85 / 0.2 = 4.25: within 10 %, kept
    rounds(p, [0.01])
    assert p.interval == 1.0
    # A link seen one long interval ago is not silent yet: the longest recent
    # interval counts until a few rounds of the short one went out.
    assert p.stretched(3.5) == pytest.approx(17.5)
    rounds(p, [0.01] * 3)
    assert p.stretched(3.5) == pytest.approx(17.5)
    rounds(p, [0.01])
    assert p.interval == 1.0 and p.stretched(3.5) == 3.5


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"budget": 0.0}, "budget must be in (0, 1]"),
        ({"budget": 1.5}, "budget must be in (0, 1]"),
        ({"interval": 0.0}, "interval must be > 0"),
    ],
)
def test_bad_settings_are_refused(kw: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("]", r"\]")):
        pacing(**kw)


def test_the_engine_spaces_rounds_by_their_work_and_keeps_its_links() -> None:
    cfg = EngineConfig(lldp_interval_s=1.0, lldp_budget=0.2, lldp_interval_max_s=30.0)
    lab = EngineLab(leaf_spine(2, 2), config=cfg).ready()
    clock = WorkClock()  # each measured piece of work costs clock.cost
    lab.engine.work_clock = clock
    links = sorted(lab.net.topo.links)
    assert len(links) == 8
    clock.cost = 0.1  # building the probes, and each frame read back: 0.1 s each

    def run(seconds: float) -> int:
        """Ticks every quarter second; the number of probe rounds sent."""
        sent = 0
        for _ in range(int(seconds / 0.25)):
            lab.advance(0.25)
            sent += bool(lab.tick())
        return sent

    run(3.0)
    lldp = lab.net.lldp
    # A round: the probes built (one piece of work) and 8 frames read back (4
    # cables, both ways); the statistics answers are the polls' work, not this.
    assert lldp.round_work == pytest.approx(0.9)
    assert lldp.interval == pytest.approx(lldp.round_work / 0.2)
    assert lab.metrics.registry.get_sample_value("fabric_lldp_interval_seconds") == lldp.interval
    sent = run(40.0)
    per_round = lldp.interval
    assert 40.0 / per_round - 1 <= sent <= 40.0 / per_round + 1
    # Far past the configured 3.5 s timeout between rounds, and no link expired.
    assert per_round > 3.5 and sorted(lab.net.topo.links) == links
    assert not lab.notices("link-down")
    # A port that just came up is not trusted as a host port before a stretched
    # round could have proven it a fabric port (two intervals in use).
    leaf = lab.dpid("leaf1")
    port = Port(50, "leaf1-eth50", "02:00:00:00:32:32")
    lab.run(lab.engine.port_status(leaf, port, deleted=False, now=lab.now))
    lab.advance(2.5)  # past the configured grace (2 s)
    assert not lab.net.trusted_edge(PortRef(leaf, 50), lab.now)
    lab.advance(2 * per_round)
    assert lab.net.trusted_edge(PortRef(leaf, 50), lab.now)

    clock.cost = 0.0  # rounds cheap again: back to the configured interval
    run(2 * per_round + 2.0)
    assert lldp.interval == 1.0
    assert lab.metrics.registry.get_sample_value("fabric_lldp_interval_seconds") == 1.0
    # A silent link now expires on the configured clock again.
    lost = links[0]
    lab.lldp_lost.add(lost.src)
    run(5.0)
    assert lost not in lab.net.topo.links


def test_a_standby_follows_the_leaders_rounds_as_it_sees_them() -> None:
    lab = EngineLab(leaf_spine(2, 2))
    lab.engine.join_cluster(may_program=lambda now: True)
    for dpid in sorted(lab.fabric.names):
        lab.connect(dpid)
    observed, _ = lab.engine.visible()
    standby = lab.engine.standby
    assert standby is not None

    def at(t: float) -> None:
        lab.advance(t - lab.now)

    def leader_round(t: float, *, lost: frozenset[PortRef] = frozenset()) -> None:
        """The leader's probe out of every cable end (but ``lost``), seen here at ``t``."""
        at(t)
        for src, peer in sorted(lab.fake.peer.items()):
            if src not in lost:
                port = next(p for p in lab.ports[src.dpid] if p.port_no == src.port)
                frame = frames.build_lldp(
                    lab.engine.signer, dpid=src.dpid, port=src.port, hw_addr=port.hw_addr, now=t
                )
                lab.packet_in(peer, frame, cookie=BASE_COOKIE)

    leader_round(1.0)
    leader_round(2.0)
    links = sorted(observed.links)
    assert len(links) == 8 and standby.round_period == 1.0
    at(9.5)  # the leader stretched its interval: 7.5 s without a probe
    lab.tick()
    assert sorted(observed.links) == links  # silence while no round goes on proves nothing
    for t in (10.0, 18.0, 26.0):
        leader_round(t)
        at(t + 7.5)
        lab.tick()
    assert standby.round_period == 8.0 and sorted(observed.links) == links
    leader_round(26.5)  # a stall in the middle of a round: not a shorter interval
    assert standby.round_period == 8.0
    silent = links[0]
    for t in (34.0, 42.0):  # rounds go on without one link: 16 s, under 3.5 rounds of 8 s
        leader_round(t, lost=frozenset({silent.src}))
        lab.tick()
    assert sorted(observed.links) == links
    for t in (50.0, 58.0):  # 32 s since it was seen: more than 3.5 rounds
        leader_round(t, lost=frozenset({silent.src}))
        lab.tick()
    assert sorted(observed.links) == links[1:]
    at(120.0)  # the leader stopped probing (it died): nothing more expires here
    lab.tick()
    assert sorted(observed.links) == links[1:]
