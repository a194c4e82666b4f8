"""Per-flow rules compiled from per-path templates: exact entries, no leaks between paths."""

from __future__ import annotations

from controller.fabric.model import FiveTuple, LinkId, Path, PortRef
from controller.flowprog.entries import (
    Cookie,
    CookieKind,
    FlowEntry,
    GroupAction,
    GroupType,
    Match,
    Output,
)
from controller.flowprog.flowrules import FlowRules, compile_flow, flow_match
from controller.flowprog.forwarding import PRIO_FLOW
from controller.flowprog.groups import failover_chain, failover_group
from controller.flowprog.repair import ALWAYS_LIVE, bounce_group

FT = FiveTuple("10.0.0.1", "10.0.1.1", 17, 5000, 4791)
PATH = Path.of_links([LinkId(PortRef(1, 3), PortRef(10, 1)), LinkId(PortRef(10, 2), PortRef(2, 4))])


def entry(action: object, *, ingress: bool, cookie: int, ft: FiveTuple = FT) -> FlowEntry:
    return FlowEntry(
        priority=PRIO_FLOW,
        match=flow_match(ft),
        actions=(action,),  # type: ignore[arg-type]
        cookie=cookie,
        idle_timeout=10 if ingress else 0,
        send_flow_removed=ingress,
        ingress=ingress,
    )


def flow_7(**kw: object) -> FlowRules:
    """Flow 7 (generation 2) of ``FT`` on ``PATH``, leaving at port 9."""
    return compile_flow(
        FT,
        flow_id=7,
        generation=2,
        path=PATH,
        egress_port=9,
        idle_timeout=10,
        **kw,  # type: ignore[arg-type]
    )


def test_a_path_with_a_backup_uplink_gets_a_failover_first_hop() -> None:
    rules = flow_7(backup_ports={1: (3, 5, 6)})
    cookie = Cookie(CookieKind.FLOW, 7, 2).encode()
    group = failover_chain([3, 5, 6])  # the primary, then every other next hop
    assert rules.needs.groups == {1: (group,)}
    assert rules.needs.flows == {
        1: (entry(GroupAction(group.group_id), ingress=True, cookie=cookie),),
        10: (entry(Output(2), ingress=False, cookie=cookie),),
        2: (entry(Output(9), ingress=False, cookie=cookie),),
    }
    assert rules.egress_first == (2, 10, 1)
    assert rules.needs.meters == {}


def test_flows_on_one_path_share_the_template_but_not_their_identity() -> None:
    other = FiveTuple("10.0.0.2", "10.0.1.1", 6, 40000, 29500)
    a = compile_flow(FT, flow_id=1, generation=0, path=PATH, egress_port=9, idle_timeout=10)
    b = compile_flow(other, flow_id=2, generation=5, path=PATH, egress_port=9, idle_timeout=10)
    assert a.needs.groups == b.needs.groups == {}
    cookie = Cookie(CookieKind.FLOW, 2, 5).encode()
    assert b.needs.flows[1] == (entry(Output(3), ingress=True, cookie=cookie, ft=other),)
    assert a.needs.flows[1][0].match != b.needs.flows[1][0].match
    b.needs.groups[99] = ()  # type: ignore[index]  # a caller scribbling on its copy...
    again = compile_flow(FT, flow_id=1, generation=0, path=PATH, egress_port=9, idle_timeout=10)
    assert again.needs.groups == {}  # ...does not reach the shared template


def test_egress_port_and_backup_choice_are_part_of_the_template() -> None:
    one = compile_flow(
        FT,
        flow_id=1,
        generation=0,
        path=PATH,
        egress_port=9,
        idle_timeout=10,
        backup_ports={1: (5,)},
    )
    two = compile_flow(
        FT,
        flow_id=1,
        generation=0,
        path=PATH,
        egress_port=8,
        idle_timeout=10,
        backup_ports={1: (6,)},
    )
    assert one.needs.groups[1] == (failover_group(3, 5),)
    assert two.needs.groups[1] == (failover_group(3, 6),)
    assert one.needs.flows[2][0].actions == (Output(9),)
    assert two.needs.flows[2][0].actions == (Output(8),)
    only_primary = compile_flow(
        FT,
        flow_id=1,
        generation=0,
        path=PATH,
        egress_port=9,
        idle_timeout=10,
        backup_ports={1: (3,)},
    )
    assert only_primary.needs.groups == {}


def test_a_flow_inside_one_switch_goes_straight_to_its_egress_port() -> None:
    rules = compile_flow(
        FT,
        flow_id=3,
        generation=0,
        path=Path(switches=(1,)),
        egress_port=4,
        idle_timeout=10,
        backup_ports={1: (5,)},
    )
    cookie = Cookie(CookieKind.FLOW, 3, 0).encode()
    assert rules.needs.flows == {1: (entry(Output(4), ingress=True, cookie=cookie),)}
    assert rules.needs.groups == {} and rules.egress_first == (1,)


def test_transit_hops_that_default_forwarding_takes_get_no_rule() -> None:
    asked: list[tuple[int, object]] = []

    def takes(dpid: int, action: object) -> bool:
        asked.append((dpid, action))
        return True

    rules = flow_7(backup_ports={1: (3, 5)}, default_takes=takes)
    cookie = Cookie(CookieKind.FLOW, 7, 2).encode()
    group = failover_group(3, 5)
    # The ingress rule pins the path even where default forwarding would agree.
    assert rules.needs.flows == {
        1: (entry(GroupAction(group.group_id), ingress=True, cookie=cookie),)
    }
    assert rules.needs.groups == {1: (group,)}
    assert asked == [(10, Output(2)), (2, Output(9))]
    assert rules.egress_first == (2, 10, 1)


def test_a_transit_hop_keeps_its_rule_where_default_forwarding_differs() -> None:
    def takes(dpid: int, action: object) -> bool:
        return dpid == 2 and action == Output(9)

    rules = flow_7(default_takes=takes)
    cookie = Cookie(CookieKind.FLOW, 7, 2).encode()
    assert rules.needs.flows == {
        1: (entry(Output(3), ingress=True, cookie=cookie),),
        10: (entry(Output(2), ingress=False, cookie=cookie),),
    }


def test_a_spines_bounce_hop_is_asked_about_as_its_group() -> None:
    bounce = bounce_group(2)
    seen: list[object] = []

    def compile_with(answer: bool) -> dict[int, tuple[object, ...]]:
        def takes(dpid: int, action: object) -> bool:
            seen.append(action)
            return answer and dpid == 10

        rules = flow_7(host_facing=lambda d: d != 10, default_takes=takes)
        return dict(rules.needs.groups)

    assert compile_with(True) == {}  # the spine's route bounces alike: no rule, no group
    assert seen[0] == GroupAction(bounce.group_id)
    assert compile_with(False) == {10: (ALWAYS_LIVE, bounce)}


def test_flow_match_is_the_sorted_exact_match_of_the_five_tuple() -> None:
    """Built directly in sorted order: the same value ``Match.of`` gives."""
    for proto, ports in (
        (6, {"tcp_src": 5000, "tcp_dst": 4791}),
        (17, {"udp_src": 5000, "udp_dst": 4791}),
    ):
        ft = FiveTuple("10.0.0.1", "10.0.1.1", proto, 5000, 4791)
        want = Match.of(
            eth_type=0x0800, ip_proto=proto, ipv4_src=ft.src_ip, ipv4_dst=ft.dst_ip, **ports
        )
        assert flow_match(ft) == want and hash(flow_match(ft)) == hash(want)
    icmp = FiveTuple("10.0.0.1", "10.0.1.1", 1)
    assert flow_match(icmp) == Match.of(
        eth_type=0x0800, ip_proto=1, ipv4_src="10.0.0.1", ipv4_dst="10.0.1.1"
    )


def test_a_flow_cookie_is_the_encoded_cookie_of_its_id_and_generation() -> None:
    for flow_id, generation in ((7, 2), (0xFFFFFFFF, 0xFFFF), (2**32 + 5, 2**16 + 3), (1, 0)):
        assert Cookie.of_flow(flow_id, generation) == (
            Cookie(CookieKind.FLOW, flow_id, generation).encode()
        )
        assert Cookie.flow_parts(Cookie.of_flow(flow_id, generation)) == (
            flow_id & 0xFFFFFFFF,
            generation & 0xFFFF,
        )


def test_the_failover_chain_is_the_one_the_leafs_spread_set_has_for_that_uplink() -> None:
    """The other next hops follow the primary in their order from it on, wrapping
    round, as the spread set's chain for that port: a leaf that spreads its default
    traffic holds the group already, and a new flow needs one flow-mod there."""
    from controller.flowprog.spread import compile_set, next_hop_set

    uplinks = (3, 5, 6, 8)
    hs = next_hop_set(uplinks, weights=None, distance=2, dpid=1)
    assert hs is not None
    spread_groups = {
        g.buckets[0].watch_port: g
        for g in compile_set(hs, cookie=0)[1]
        if g.type is GroupType.FAST_FAILOVER
    }
    assert set(spread_groups) == set(uplinks)
    for out in uplinks:
        path = Path.of_links(
            [LinkId(PortRef(1, out), PortRef(10, 1)), LinkId(PortRef(10, 2), PortRef(2, 4))]
        )
        rules = compile_flow(
            FT,
            flow_id=7,
            generation=2,
            path=path,
            egress_port=9,
            idle_timeout=10,
            backup_ports={1: uplinks},
        )
        (group,) = rules.needs.groups[1]
        assert group == spread_groups[out]
        i = uplinks.index(out)
        assert [b.watch_port for b in group.buckets] == [*uplinks[i:], *uplinks[:i]]
    # A first hop off the next hops (a detour) still has every next hop behind it.
    (detour,) = flow_7(backup_ports={1: (5, 6)}).needs.groups[1]
    assert detour == failover_chain([3, 5, 6])
    assert flow_7(backup_ports={1: (3,)}).needs.groups == {}  # no other port: no group
