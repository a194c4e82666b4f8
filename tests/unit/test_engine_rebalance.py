"""The engine repairs an undeclared pattern that per-flow placement corners.

The integration test's scenario on the fake fabric: 3 spines x 4 leaves,
every leaf sends one AI flow to each other leaf at 90% of a link, the first
packets arriving in an order that makes first-fit least-utilized put two
flows on one link. The counters then show the collisions (a link carries at
most its capacity), and the engine's own rounds (congestion, periodic
rebalance) must reach a placement where no two flows share a link within two
rebalance periods.
"""

from __future__ import annotations

from dataclasses import replace

from apilab import roce_policy, udp_frame
from enginelab import TRAP_COOKIE, EngineLab
from synthetic import leaf_spine

from controller.engine.engine import EngineConfig
from controller.engine.rounds import LAG_POLLS
from controller.fabric.model import FiveTuple, LinkId
from controller.flowprog.entries import Cookie, CookieKind
from controller.telemetry import CapacityConfig, PortCounters

LINK_MBPS = 100.0
RATE_BPS = 90e6
REBALANCE_S = 2.0
CORNER_ORDER = [(4, 2), (1, 4), (2, 4), (3, 2), (3, 4), (3, 1)]
CORNER_ORDER += [(2, 3), (4, 3), (2, 1), (1, 3), (4, 1), (1, 2)]


def lab(*, rebalance_period_s: float | None = None) -> EngineLab:
    policy = roce_policy()
    if rebalance_period_s is not None:
        params = replace(policy.params, rebalance_period_s=rebalance_period_s)
        policy = replace(policy, params=params)
    cfg = EngineConfig(
        capacity=CapacityConfig.from_config(LINK_MBPS, {}),
        default_demand_bps=LINK_MBPS * 1e6,
        poll_interval_s=0.5,
        rebalance_period_s=REBALANCE_S,
    )
    fab = leaf_spine(3, 4, capacity_bps=LINK_MBPS * 1e6)
    return EngineLab(fab, config=cfg, policies=(policy,), hosts_per_leaf=3).ready()


def start(lab_: EngineLab) -> list[FiveTuple]:
    """The first packet of each flow, in the cornering order."""
    by_leaf = {
        j: [h for h in lab_.hosts if h.port.dpid == lab_.dpid(f"leaf{j}")] for j in range(1, 5)
    }
    sent = {j: 0 for j in by_leaf}
    received = {j: 0 for j in by_leaf}
    flows = []
    for n, (a, b) in enumerate(CORNER_ORDER):
        src, dst = by_leaf[a][sent[a]], by_leaf[b][received[b]]
        sent[a] += 1
        received[b] += 1
        ft = FiveTuple(src.ip, dst.ip, 17, 51000 + n, 4791)
        lab_.packet_in(
            src.port, udp_frame(ft, src_mac=src.mac, dst_mac=dst.mac), cookie=TRAP_COOKIE
        )
        lab_.advance(0.05)
        flows.append(ft)
    return flows


def shared_links(lab_: EngineLab, flows: list[FiveTuple]) -> int:
    used: dict[LinkId, int] = {}
    for ft in flows:
        flow = lab_.engine.placer.te.flow_by_five_tuple(ft)
        assert flow is not None
        for lid in flow.path.links:
            used[lid] = used.get(lid, 0) + 1
    return sum(1 for n in used.values() if n > 1)


def carry(lab_: EngineLab, flows: list[FiveTuple], seconds: float) -> None:
    """Traffic as the switches would count it: each flow at its rate, a link at most
    its capacity (shared fairly), ticking as the shim does."""
    step = 0.05
    for _ in range(round(seconds / step)):
        per_link: dict[LinkId, list[int]] = {}
        tracked = [lab_.engine.placer.te.flow_by_five_tuple(ft) for ft in flows]
        for k, flow in enumerate(tracked):
            assert flow is not None
            for lid in flow.path.links:
                per_link.setdefault(lid, []).append(k)
        share = {k: 1.0 for k in range(len(tracked))}
        for members in per_link.values():
            fair = min(1.0, LINK_MBPS * 1e6 / (RATE_BPS * len(members)))
            for k in members:
                share[k] = min(share[k], fair)
        for lid, members in per_link.items():
            bits = sum(RATE_BPS * share[k] for k in members) * step
            for ref, field in ((lid.src, "tx_bytes"), (lid.dst, "rx_bytes")):
                have = lab_.counters.get(ref, PortCounters())
                grown = {
                    field: getattr(have, field) + int(bits / 8),
                    "rx_packets": 1 + have.rx_packets,
                }
                lab_.counters[ref] = replace(have, **grown)
        for k, flow in enumerate(tracked):
            assert flow is not None
            cookie = Cookie(CookieKind.FLOW, flow.flow_id, flow.generation).encode()
            lab_.flow_bytes[cookie] = lab_.flow_bytes.get(cookie, 0) + int(
                RATE_BPS * share[k] * step / 8
            )
        lab_.advance(step)
        lab_.tick()


def test_a_cornered_pattern_has_links_to_itself_within_two_rebalance_periods() -> None:
    lab_ = lab()
    flows = start(lab_)
    assert shared_links(lab_, flows) > 0  # the order cornered first-fit placement
    carry(lab_, flows, 2 * REBALANCE_S + 3.0)  # + the 3 s before new flows count as measured
    assert shared_links(lab_, flows) == 0
    moved = lab_.notices("flow-rerouted")
    # Moves are the engine's own (first fit, a trade or the joint round), each one
    # a reaction to measured congestion or a periodic round.
    assert moved and all(m.endswith(("congestion", "rebalance")) for m in moved), moved
    by_ip = {h.ip: h for h in lab_.hosts}
    for ft in flows:  # each flow's packets follow its (new) path, on the switches
        flow = lab_.engine.placer.te.flow_by_five_tuple(ft)
        assert flow is not None
        walk = lab_.send(by_ip[ft.src_ip], by_ip[ft.dst_ip], udp_src=ft.src_port, udp_dst=4791)
        assert walk.paths == {flow.path.switches}


def test_a_cornered_pattern_is_repaired_once_its_flows_may_move_not_a_period_later() -> None:
    # With a 30 s period no periodic round comes during the test: only the retries
    # the congestion round books (the planner's load catching up after a poll, the
    # flows' hold-down ending) can repair the corner, and they must do it once the
    # last flow may move, plus the polls that measure it (see rounds).
    lab_ = lab(rebalance_period_s=30.0)
    flows = start(lab_)
    last_start = lab_.now
    assert shared_links(lab_, flows) > 0
    policy = lab_.engine.placer.te.policy_of(1)
    assert policy is not None and policy.params.rebalance_period_s == 30.0
    hold, poll = policy.params.min_move_interval_s, lab_.engine.polls.configured
    bound = hold + (2 + LAG_POLLS) * poll
    while shared_links(lab_, flows) and lab_.now - last_start < bound + 1.0:
        carry(lab_, flows, 0.05)
    took = lab_.now - last_start
    assert shared_links(lab_, flows) == 0, f"still cornered {took:.2f} s after the last start"
    assert took <= bound, f"repaired {took:.2f} s after the last start (bound {bound:.2f} s)"
    moved = lab_.notices("flow-rerouted")
    assert moved and all(m.endswith("congestion") for m in moved), moved
