"""What the flow programmer puts on switches, checked by walking packets through them.

Programs are applied to :class:`fakeoftable.FakeFabric` switches built from a
synthetic leaf-spine; the tests then ask where a packet goes ("only out of
leaf2's host port, through spine2"), what a switch holds, and which cookie
each entry carries (cookies are how a restarted controller, flow-stats
requests and flow-removed messages recognise an entry).
"""

from __future__ import annotations

import pytest
from synthetic import Fabric, five_tuple, leaf_spine, three_tier

from controller.devtools.fakeoftable import FakeFabric
from controller.errors import InvalidArgument
from controller.fabric.model import FiveTuple, Host, Path
from controller.flowprog.classmatch import of_matches
from controller.flowprog.entries import (
    Bucket,
    Cookie,
    CookieKind,
    FlowEntry,
    GroupAction,
    GroupEntry,
    GroupType,
    Match,
    MeterEntry,
    Output,
    ToController,
)
from controller.flowprog.flowrules import FLOW_COOKIE_MASK, FLOW_KIND_COOKIE, compile_flow
from controller.flowprog.forwarding import (
    PACKET_IN_METER,
    ClassTrap,
    ForwardingInputs,
    compile_forwarding,
)
from controller.flowprog.plan import Phase, Program, reconcile
from controller.flowprog.programmer import Programmer
from controller.flowprog.tables import ConflictError, DesiredTables, OwnerNeeds, SwitchTable
from controller.policy.model import FlowMatch, PortRange
from controller.routing.paths import PathCache

TCP_FT = FiveTuple("10.0.1.1", "10.0.2.1", 6, 40000, 29500)


def fabric() -> tuple[Fabric, FakeFabric, Programmer]:
    fab = leaf_spine(2, 2)
    links = [attrs["link"] for _, _, attrs in fab.graph.edges(data=True)]
    fake = FakeFabric(switches=fab.names, links=links)
    prog = Programmer(warmup_s=0.0)
    for dpid in fab.names:
        fake.apply_ops(dpid, prog.switch_synced(dpid, SwitchTable(), now=0.0, warm=False))
    return fab, fake, prog


def packet(ft: FiveTuple) -> dict[str, int | str]:
    fields: dict[str, int | str] = {
        "eth_type": 0x0800,
        "ip_proto": ft.ip_proto,
        "ipv4_src": ft.src_ip,
        "ipv4_dst": ft.dst_ip,
    }
    if ft.ip_proto == 6:
        fields.update(tcp_src=ft.src_port, tcp_dst=ft.dst_port)
    elif ft.ip_proto == 17:
        fields.update(udp_src=ft.src_port, udp_dst=ft.dst_port)
    return fields


def install_flow(
    fab: Fabric,
    fake: FakeFabric,
    prog: Programmer,
    ft: FiveTuple,
    *,
    spine: str = "spine2",
    flow_id: int = 7,
    generation: int = 3,
    backup: bool = False,
) -> None:
    path = next(
        p
        for p in PathCache(fab.graph).paths(fab.dpid("leaf1"), fab.dpid("leaf2"))
        if fab.names[p.switches[1]] == spine
    )
    ports = sorted(
        lid.src.port for lid in fab.links_of("leaf1") if lid.src.dpid == fab.dpid("leaf1")
    )
    rules = compile_flow(
        ft,
        flow_id=flow_id,
        generation=generation,
        path=path,
        egress_port=fab.host_port("leaf2").port,
        idle_timeout=10,
        backup_ports={fab.dpid("leaf1"): ports} if backup else None,
    )
    assert rules.egress_first == tuple(reversed(path.switches))
    fake.apply(prog.set_owner(("flow", flow_id), rules.needs, now=1.0))


# ----------------------------------------------------------------------- cookies
def test_a_cookie_is_tag_kind_flow_id_generation() -> None:
    cookie = Cookie(CookieKind.FLOW, flow_id=0x12345678, generation=0xBEEF)
    assert cookie.encode() == 0xFA04_12345678_BEEF
    assert Cookie.decode(cookie.encode()) == cookie
    # Out-of-range ids and generations are cut to their fields, never spill over.
    wide = Cookie(CookieKind.HOST_ROUTE, flow_id=0x1_0000_0001, generation=0x1_0002)
    assert wide.encode() == 0xFA02_00000001_0002
    for kind in CookieKind:
        assert Cookie.decode(Cookie(kind, 5, 6).encode()) == Cookie(kind, 5, 6)


def test_cookies_this_controller_did_not_write_are_not_decoded() -> None:
    assert Cookie.decode(0) is None
    assert Cookie.decode(0xFB04_00000001_0001) is None  # another tag
    assert Cookie.decode(0xFA7F_00000001_0001) is None  # an unknown kind
    assert Cookie.decode(0x00FA_0400_0000_0001) is None  # tag in the wrong byte


def test_flow_parts_reads_a_placed_flows_cookie_as_decode_does() -> None:
    values = [Cookie(kind, 0xDEADBEEF, 0xFFFF).encode() for kind in CookieKind]
    values += [0, 0xFB04_00000001_0001, 0xFA7F_00000001_0001, 0x00FA_0400_0000_0001]
    values += [Cookie(CookieKind.FLOW, i, 2 * i).encode() for i in (0, 1, 0xFFFF)]
    for value in values:
        decoded = Cookie.decode(value)
        expected = None
        if decoded is not None and decoded.kind is CookieKind.FLOW:
            expected = (decoded.flow_id, decoded.generation)
        assert Cookie.flow_parts(value) == expected, hex(value)
    assert Cookie.flow_parts(values[CookieKind.FLOW - 1]) == (0xDEADBEEF, 0xFFFF)


def test_the_flow_masks_select_every_generation_and_every_flow() -> None:
    old = Cookie(CookieKind.FLOW, 9, 1).encode()
    new = Cookie(CookieKind.FLOW, 9, 2).encode()
    other = Cookie(CookieKind.FLOW, 10, 1).encode()
    assert old & Cookie.FLOW_MASK == new & Cookie.FLOW_MASK != other & Cookie.FLOW_MASK
    for value in (old, other):
        assert value & FLOW_COOKIE_MASK == FLOW_KIND_COOKIE
    assert Cookie(CookieKind.CLASS_TRAP).encode() & FLOW_COOKIE_MASK != FLOW_KIND_COOKIE


def test_match_text_lists_its_fields_or_a_star() -> None:
    assert str(Match()) == "*"
    assert str(Match.of(ip_proto=17, eth_type=2048)) == "eth_type=2048,ip_proto=17"


# -------------------------------------------------------------------- flow rules
def test_a_placed_udp_flow_follows_its_path_and_only_its_5_tuple_matches() -> None:
    fab, fake, prog = fabric()
    ft = five_tuple(1)
    install_flow(fab, fake, prog, ft)
    walk = fake.walk(fab.dpid("leaf1"), fab.host_port("leaf1").port, packet(ft))
    assert walk.only_to(fab.host_port("leaf2"))
    assert walk.paths == {(fab.dpid("leaf1"), fab.dpid("spine2"), fab.dpid("leaf2"))}
    for other in (
        FiveTuple(ft.src_ip, ft.dst_ip, 17, ft.src_port + 1, ft.dst_port),
        FiveTuple(ft.src_ip, ft.dst_ip, 17, ft.src_port, ft.dst_port + 1),
        FiveTuple(ft.src_ip, ft.dst_ip, 6, ft.src_port, ft.dst_port),
    ):
        assert not fake.walk(fab.dpid("leaf1"), 9, packet(other)).delivered


def test_a_placed_tcp_flow_matches_its_tcp_ports() -> None:
    fab, fake, prog = fabric()
    install_flow(fab, fake, prog, TCP_FT)
    walk = fake.walk(fab.dpid("leaf1"), 9, packet(TCP_FT))
    assert walk.only_to(fab.host_port("leaf2"))
    for sport, dport in ((40001, 29500), (40000, 29501)):
        other = FiveTuple(TCP_FT.src_ip, TCP_FT.dst_ip, 6, sport, dport)
        assert not fake.walk(fab.dpid("leaf1"), 9, packet(other)).delivered


def test_a_flow_without_ports_matches_on_addresses_and_protocol() -> None:
    fab, fake, prog = fabric()
    icmp = FiveTuple("10.0.1.1", "10.0.2.1", 1)
    install_flow(fab, fake, prog, icmp)
    entry = next(iter(fake.switches[fab.dpid("spine2")].flows.values()))
    assert entry.match == Match.of(
        eth_type=0x0800, ip_proto=1, ipv4_src="10.0.1.1", ipv4_dst="10.0.2.1"
    )
    assert fake.walk(fab.dpid("leaf1"), 9, packet(icmp)).only_to(fab.host_port("leaf2"))


def test_only_the_ingress_rule_times_out_and_reports_its_removal() -> None:
    fab, fake, prog = fabric()
    install_flow(fab, fake, prog, five_tuple(1), flow_id=0xABCD, generation=0x12)
    cookie = Cookie(CookieKind.FLOW, 0xABCD, 0x12).encode()
    seen = {}
    for name in ("leaf1", "spine2", "leaf2"):
        (entry,) = fake.switches[fab.dpid(name)].flows.values()
        seen[name] = (entry.cookie, entry.idle_timeout, entry.send_flow_removed)
    assert seen == {
        "leaf1": (cookie, 10, True),
        "spine2": (cookie, 0, False),
        "leaf2": (cookie, 0, False),
    }


def test_the_first_hop_fails_over_to_the_backup_uplink_in_the_switch() -> None:
    fab, fake, prog = fabric()
    ft = five_tuple(1)
    install_flow(fab, fake, prog, ft, spine="spine2", backup=True)
    (entry,) = fake.switches[fab.dpid("leaf1")].flows.values()
    assert isinstance(entry.actions[0], GroupAction)
    # Only the ingress switch has a group; the other hops forward directly.
    assert not fake.switches[fab.dpid("spine2")].groups
    (group,) = fake.switches[fab.dpid("leaf1")].groups.values()
    assert group.type is GroupType.FAST_FAILOVER
    up = fake.walk(fab.dpid("leaf1"), 9, packet(ft))
    assert up.paths == {(fab.dpid("leaf1"), fab.dpid("spine2"), fab.dpid("leaf2"))}
    fake.down.add(fab.link("leaf1", "spine2").src)
    # The backup uplink carries it to spine1 (whose default routes, not installed
    # here, take it on).
    (branch,) = fake.walk(fab.dpid("leaf1"), 9, packet(ft)).terminals
    assert branch.switches == (fab.dpid("leaf1"), fab.dpid("spine1"))


def test_without_another_uplink_the_first_hop_forwards_directly() -> None:
    fab = leaf_spine(2, 2)
    path = PathCache(fab.graph).paths(fab.dpid("leaf1"), fab.dpid("leaf2"))[0]
    out = path.links[0].src.port
    rules = compile_flow(
        five_tuple(1),
        flow_id=1,
        generation=0,
        path=path,
        egress_port=9,
        idle_timeout=5,
        backup_ports={fab.dpid("leaf1"): [out]},  # only the primary itself
    )
    (entry,) = rules.needs.flows[fab.dpid("leaf1")]
    assert entry.actions == (Output(out),) and not rules.needs.groups


def test_a_flow_inside_one_leaf_gets_one_rule_without_a_group() -> None:
    fab = leaf_spine(2, 2)
    leaf1 = fab.dpid("leaf1")
    rules = compile_flow(
        five_tuple(1),
        flow_id=1,
        generation=0,
        path=Path(switches=(leaf1,)),
        egress_port=12,
        idle_timeout=5,
        backup_ports={leaf1: [3, 4]},
    )
    (entry,) = rules.needs.flows[leaf1]
    assert entry.actions == (Output(12),) and entry.send_flow_removed and not rules.needs.groups


def test_dropping_a_flow_removes_its_rules_and_group() -> None:
    fab, fake, prog = fabric()
    before = fake.hashes()
    install_flow(fab, fake, prog, five_tuple(1), backup=True)
    assert fake.hashes() != before
    program = prog.drop_owner(("flow", 7), now=2.0, reason="expired")
    assert program.reason == "expired"
    fake.apply(program)
    assert fake.hashes() == before


# -------------------------------------------------------------------- forwarding
def forwarding(**kw: object) -> tuple[Fabric, dict[int, OwnerNeeds]]:
    """Default forwarding of a 2 x 2 leaf-spine with one host on leaf2, by SELECT groups
    (the L4 spread and local repair off, unless a test turns them on)."""
    kw = {"spread_l4": False, "local_repair": False, **kw}
    fab = leaf_spine(2, 2)
    links = [attrs["link"] for _, _, attrs in fab.graph.edges(data=True)]
    hosts = [Host("02:00:00:00:00:02", "10.0.2.1", fab.host_port("leaf2"), 1.0)]
    edge = {fab.dpid(n): [fab.host_port(n).port] for n in fab.leaves}
    inp = ForwardingInputs(
        switches=sorted(fab.names),
        links=links,
        hosts=hosts,
        edge_ports=lambda d: edge.get(d, []),
        **kw,  # type: ignore[arg-type]
    )
    return fab, compile_forwarding(inp)


def test_every_default_entry_carries_the_cookie_of_its_kind() -> None:
    trap = ClassTrap(30100, Match.of(eth_type=0x0800, ip_proto=17))
    _, needs = forwarding(traps=[trap])
    kinds = {}
    for dpid, need in needs.items():
        for entry in need.flows[dpid]:
            decoded = Cookie.decode(entry.cookie)
            assert decoded is not None, entry
            kinds.setdefault(decoded.kind, set()).add(entry.priority)
    assert kinds[CookieKind.BASE] == {60000, 59000, 100, 0}
    assert kinds[CookieKind.HOST_ROUTE] == {20000}
    assert kinds[CookieKind.CLASS_TRAP] == {30100}


def test_packet_ins_are_metered_only_when_asked() -> None:
    trap = ClassTrap(30100, Match.of(eth_type=0x0800, ip_proto=17))
    fab, free = forwarding(traps=[trap])
    leaf1 = fab.dpid("leaf1")
    assert all(e.meter_id is None for e in free[leaf1].flows[leaf1])
    assert not free[leaf1].meters
    fab, metered = forwarding(traps=[trap], packet_in_pps=101)
    assert metered[leaf1].meters[leaf1] == (MeterEntry(PACKET_IN_METER, 101, 50),)
    to_controller = {
        e.priority: e.meter_id for e in metered[leaf1].flows[leaf1] if ToController() in e.actions
    }
    # LLDP stays unmetered (discovery must not starve); ARP, traps and misses are metered.
    assert to_controller == {60000: None, 59000: 1, 30100: 1, 0: 1}


def test_a_weighted_spread_with_every_weight_zero_falls_back_to_an_even_one() -> None:
    fab, even = forwarding()
    fab, zero = forwarding(neighbour_weight=lambda dpid: 0.0)
    leaf1 = fab.dpid("leaf1")
    assert zero[leaf1].groups == even[leaf1].groups
    (group,) = zero[leaf1].groups[leaf1]
    assert [b.weight for b in group.buckets] == [1, 1]


def leaf1_spread(spine1: float, spine2: float) -> tuple[Fabric, GroupEntry]:
    """leaf1's group towards leaf2 when spine1 and spine2 weigh this much."""
    spines = leaf_spine(2, 2)
    weights = {spines.dpid("spine1"): spine1, spines.dpid("spine2"): spine2}
    fab, needs = forwarding(neighbour_weight=lambda dpid: weights.get(dpid, 1.0))
    leaf1 = fab.dpid("leaf1")
    (group,) = needs[leaf1].groups[leaf1]
    return fab, group


def test_a_weighted_spread_follows_the_neighbours_weights() -> None:
    _, group = leaf1_spread(0.3, 0.1)
    assert [b.weight for b in group.buckets] == [3, 1]


# ------------------------------------------------------------------ desired state
SW = 5
GROUP = GroupEntry(0x10000001, GroupType.SELECT, (Bucket((Output(1),), 1, 1),))
GROUP_V2 = GroupEntry(0x10000001, GroupType.SELECT, (Bucket((Output(2),), 1, 2),))


def test_meters_are_added_changed_and_deleted_as_meters() -> None:
    tables = DesiredTables()
    add = tables.set_owner("m", OwnerNeeds.build(meters={SW: [MeterEntry(1, 100)]}))
    assert add[SW].meter_adds == [MeterEntry(1, 100)] and not add[SW].group_adds
    assert tables.owners() == ["m"]
    mod = tables.set_owner("m", OwnerNeeds.build(meters={SW: [MeterEntry(1, 200)]}))
    assert mod[SW].meter_mods == [MeterEntry(1, 200)] and not mod[SW].group_mods
    gone = tables.drop_owner("m")
    assert gone[SW].meter_deletes == [MeterEntry(1, 200)] and not gone[SW].group_deletes
    assert tables.owners() == []


def test_an_owner_may_change_its_own_group_but_not_one_it_shares() -> None:
    tables = DesiredTables()
    entry = FlowEntry(
        20000, Match.of(eth_dst="02:00:00:00:00:01"), (GroupAction(GROUP.group_id),), 2
    )
    tables.set_owner("a", OwnerNeeds.build(flows={SW: [entry]}, groups={SW: [GROUP]}))
    changed = tables.set_owner("a", OwnerNeeds.build(flows={SW: [entry]}, groups={SW: [GROUP_V2]}))
    assert changed[SW].group_mods == [GROUP_V2] and not changed[SW].group_adds
    other = FlowEntry(
        20000, Match.of(eth_dst="02:00:00:00:00:02"), (GroupAction(GROUP.group_id),), 2
    )
    tables.set_owner("b", OwnerNeeds.build(flows={SW: [other]}, groups={SW: [GROUP_V2]}))
    with pytest.raises(ConflictError) as err:
        tables.set_owner("a", OwnerNeeds.build(flows={SW: [entry]}, groups={SW: [GROUP]}))
    assert str(err.value) == f"group {GROUP.group_id:#x} on {SW} has two contents"
    assert tables.table(SW).groups[GROUP.group_id] == GROUP_V2


def test_dropping_an_owner_that_never_was_changes_nothing() -> None:
    tables = DesiredTables()
    assert tables.drop_owner("ghost") == {} and tables.owners() == []
    only_group = tables.set_owner("g", OwnerNeeds.build(groups={SW: [GROUP]}))
    assert only_group[SW].group_adds == [GROUP] and tables.owners() == ["g"]


# --------------------------------------------------------------------- programmer
def test_reported_groups_and_meters_survive_the_warm_up_then_go() -> None:
    prog, fake = Programmer(warmup_s=4.0), FakeFabric(switches=[SW])
    stale_meter = MeterEntry(9, 10)
    fake.switches[SW].groups[GROUP.group_id] = GROUP
    fake.switches[SW].meters[stale_meter.meter_id] = stale_meter
    fake.apply_ops(SW, prog.switch_synced(SW, fake.switches[SW].reported(), now=0.0))
    # An owner wants a changed group under the same id and a changed meter.
    entry = FlowEntry(
        20000, Match.of(eth_dst="02:00:00:00:00:01"), (GroupAction(GROUP.group_id),), 2
    )
    want = OwnerNeeds.build(
        flows={SW: [entry]}, groups={SW: [GROUP_V2]}, meters={SW: [MeterEntry(9, 20)]}
    )
    fake.apply(prog.set_owner("a", want, now=1.0))
    assert fake.switches[SW].groups == {GROUP.group_id: GROUP}
    assert fake.switches[SW].meters == {9: stale_meter}
    done = prog.end_warmups(now=4.0)
    assert done.reason == "warm-up over"
    fake.apply(done)
    assert fake.switches[SW].groups == {GROUP.group_id: GROUP_V2}
    assert fake.switches[SW].meters == {9: MeterEntry(9, 20)}


def test_every_switch_whose_warm_up_ended_is_reconciled() -> None:
    prog = Programmer(warmup_s=2.0)
    fake = FakeFabric(switches=[1, 2, 3])
    stale = FlowEntry(5, Match.of(eth_dst="02:00:00:00:00:09"), (Output(1),), 2)
    for dpid in (1, 2, 3):
        fake.switches[dpid].flows[stale.key] = stale
    fake.apply_ops(1, prog.switch_synced(1, fake.switches[1].reported(), now=0.0, warm=False))
    fake.apply_ops(2, prog.switch_synced(2, fake.switches[2].reported(), now=0.0))
    fake.apply_ops(3, prog.switch_synced(3, fake.switches[3].reported(), now=1.0))
    assert not fake.switches[1].flows  # a cold sync: cleaned at once
    assert prog.warming(2, 1.9) and not prog.warming(1, 0.0) and not prog.warming(9, 0.0)
    first = prog.end_warmups(now=2.5)
    assert sorted(d for phase in first.phases for d in phase.ops) == [2]
    fake.apply(first)
    second = prog.end_warmups(now=3.0)
    assert sorted(d for phase in second.phases for d in phase.ops) == [3]


def test_a_switch_that_returns_after_being_lost_is_warmed_up_afresh() -> None:
    prog, fake = Programmer(warmup_s=4.0), FakeFabric(switches=[SW])
    fake.apply_ops(SW, prog.switch_synced(SW, SwitchTable(), now=0.0))
    prog.switch_lost(SW)
    assert not prog.warming(SW, 1.0) and not prog.end_warmups(now=10.0)
    prog.switch_lost(SW)  # twice is harmless


def test_a_moved_flows_new_path_is_built_from_egress_to_ingress() -> None:
    fab, _, prog = fabric()
    path = PathCache(fab.graph).paths(fab.dpid("leaf1"), fab.dpid("leaf2"))[1]
    rules = compile_flow(
        five_tuple(3), flow_id=3, generation=1, path=path, egress_port=9, idle_timeout=5
    )
    program = prog.set_owner(
        ("flow", 3), rules.needs, now=1.0, reason="move", egress_first=rules.egress_first
    )
    build = program.phases[0]
    assert list(build.ops) == [fab.dpid("leaf2"), fab.dpid("spine2")]
    assert list(program.phases[1].ops) == [fab.dpid("leaf1")]  # the flip: ingress last


def test_extending_a_program_keeps_only_phases_with_work() -> None:
    first = Program(reason="a")
    busy = Phase()
    busy.add(1, [])
    other = Program(phases=[Phase(), busy], reason="b")
    first.extend(other)
    assert first.phases == [p for p in other.phases if p]


def test_reconciling_adds_a_missing_group_before_its_users() -> None:
    entry = FlowEntry(10, Match.of(eth_dst="02:00:00:00:00:01"), (GroupAction(GROUP.group_id),), 2)
    desired = SwitchTable(flows={entry.key: entry}, groups={GROUP.group_id: GROUP})
    fake = FakeFabric(switches=[SW])
    fake.apply_ops(SW, reconcile(desired, SwitchTable()))
    assert fake.switches[SW].groups == {GROUP.group_id: GROUP}
    assert list(fake.switches[SW].flows) == [entry.key]


# ------------------------------------------------------------------ class matches
def test_a_class_match_names_the_port_field_it_cannot_compile() -> None:
    with pytest.raises(InvalidArgument) as err:
        of_matches(FlowMatch(ip_proto=17, src_ports=(PortRange(70000, 70001),)))
    assert (err.value.field, err.value.reason) == (
        "src_ports",
        "range 70000-70001 is not within 0-65535",
    )
    with pytest.raises(InvalidArgument) as err:
        of_matches(FlowMatch(ip_proto=6, dst_ports=(PortRange(5, 70000),)))
    assert (err.value.field, err.value.reason) == (
        "dst_ports",
        "range 5-70000 is not within 0-65535",
    )
    with pytest.raises(InvalidArgument) as err:
        of_matches(FlowMatch(dst_ports=(PortRange(80, 80),)))
    assert err.value.reason == "ports can only be matched with ip_proto tcp or udp"


# --------------------------------------------------------- programmer, continued
G_OTHER = GroupEntry(0x10000002, GroupType.SELECT, (Bucket((Output(3),), 1, 3),))


def route(mac_tail: int, *actions: object) -> FlowEntry:
    mac = f"02:00:00:00:00:{mac_tail:02x}"
    return FlowEntry(20000, Match.of(eth_dst=mac), tuple(actions), 2)  # type: ignore[arg-type]


def synced_programmer(*, warm: bool = False, now: float = 0.0) -> tuple[Programmer, FakeFabric]:
    prog, fake = Programmer(warmup_s=4.0), FakeFabric(switches=[SW])
    fake.apply_ops(SW, prog.switch_synced(SW, fake.switches[SW].reported(), now=now, warm=warm))
    return prog, fake


def test_a_changed_group_under_the_same_id_is_modified_on_the_switch() -> None:
    prog, fake = synced_programmer()
    uses = route(1, GroupAction(GROUP.group_id))
    fake.apply(
        prog.set_owner("a", OwnerNeeds.build(flows={SW: [uses]}, groups={SW: [GROUP]}), now=1.0)
    )
    fake.apply(
        prog.set_owner("a", OwnerNeeds.build(flows={SW: [uses]}, groups={SW: [GROUP_V2]}), now=2.0)
    )
    assert fake.switches[SW].groups == {GROUP.group_id: GROUP_V2}
    assert fake.mods()["GroupModify"] == 1


def test_a_group_handed_from_one_owner_to_another_in_one_batch_stays() -> None:
    prog, fake = synced_programmer()
    a = route(1, GroupAction(GROUP.group_id))
    b = route(2, GroupAction(GROUP.group_id))
    fake.apply(
        prog.set_owner("a", OwnerNeeds.build(flows={SW: [a]}, groups={SW: [GROUP]}), now=1.0)
    )
    fake.apply(
        prog.set_owners(
            {
                "a": OwnerNeeds(),
                "b": OwnerNeeds.build(flows={SW: [b]}, groups={SW: [GROUP]}),
            },
            now=2.0,
        )
    )
    assert fake.switches[SW].groups == {GROUP.group_id: GROUP}
    assert list(fake.switches[SW].flows) == [b.key]


def test_meters_are_deleted_with_their_last_owner() -> None:
    prog, fake = synced_programmer()
    fake.apply(prog.set_owner("m", OwnerNeeds.build(meters={SW: [MeterEntry(1, 100)]}), now=1.0))
    assert fake.switches[SW].meters == {1: MeterEntry(1, 100)}
    fake.apply(prog.drop_owner("m", now=2.0))
    assert fake.switches[SW].meters == {}


def test_during_a_warm_up_only_reported_entries_are_held_back() -> None:
    prog, fake = Programmer(warmup_s=4.0), FakeFabric(switches=[SW])
    old = route(1, Output(1))
    fake.switches[SW].flows[old.key] = old
    fake.switches[SW].groups[G_OTHER.group_id] = G_OTHER
    fake.apply_ops(SW, prog.switch_synced(SW, fake.switches[SW].reported(), now=0.0))
    # The owner rewrites the reported route (held back) and adds a new one (installed).
    fresh = route(2, GroupAction(GROUP.group_id))
    rewrite = route(1, Output(2))
    groups = {SW: [G_OTHER, GROUP]}
    fake.apply(
        prog.set_owner("a", OwnerNeeds.build(flows={SW: [rewrite, fresh]}, groups=groups), now=1.0)
    )
    assert fake.switches[SW].flows[old.key] == old
    assert fake.switches[SW].flows[fresh.key] == fresh
    assert fake.switches[SW].groups[GROUP.group_id] == GROUP
    # Dropping the reported group while warming keeps it; the new one goes at once.
    fake.apply(prog.set_owner("a", OwnerNeeds.build(flows={SW: [rewrite]}), now=2.0))
    assert set(fake.switches[SW].groups) == {G_OTHER.group_id}
    # Past the warm-up deadline (before end_warmups runs) changes apply in full.
    fake.apply(prog.set_owner("a", OwnerNeeds.build(flows={SW: [route(1, Output(3))]}), now=5.0))
    assert fake.switches[SW].flows[old.key].actions == (Output(3),)


def test_a_warm_sync_adds_the_groups_and_meters_a_switch_lacks() -> None:
    prog = Programmer(warmup_s=4.0)
    uses = route(1, GroupAction(GROUP.group_id))
    prog.set_owner(
        "a",
        OwnerNeeds.build(flows={SW: [uses]}, groups={SW: [GROUP]}, meters={SW: [MeterEntry(1, 5)]}),
        now=0.0,
    )
    fake = FakeFabric(switches=[SW])
    fake.apply_ops(SW, prog.switch_synced(SW, fake.switches[SW].reported(), now=0.0))
    assert fake.switches[SW].groups == {GROUP.group_id: GROUP}
    assert fake.switches[SW].meters == {1: MeterEntry(1, 5)}
    assert list(fake.switches[SW].flows) == [uses.key]


def test_an_unconnected_switch_does_not_hold_up_the_others() -> None:
    prog, fake = Programmer(warmup_s=0.0), FakeFabric(switches=[1, 2])
    fake.apply_ops(2, prog.switch_synced(2, SwitchTable(), now=0.0, warm=False))
    program = prog.set_owner(
        "a", OwnerNeeds.build(flows={1: [route(1, Output(1))], 2: [route(1, Output(2))]}), now=1.0
    )
    assert list(program.phases[0].ops) == [2]


def test_a_new_path_across_three_tiers_is_built_from_its_egress() -> None:
    fab = three_tier(pods=2, leaves_per_pod=1, aggs_per_pod=1, spines=1)
    prog = Programmer(warmup_s=0.0)
    for dpid in fab.names:
        prog.switch_synced(dpid, SwitchTable(), now=0.0, warm=False)
    path = PathCache(fab.graph).paths(fab.dpid("leaf1-1"), fab.dpid("leaf2-1"))[0]
    rules = compile_flow(
        five_tuple(3), flow_id=3, generation=1, path=path, egress_port=9, idle_timeout=5
    )
    program = prog.set_owner(("flow", 3), rules.needs, now=1.0, egress_first=rules.egress_first)
    assert [fab.names[d] for d in program.phases[0].ops] == [
        "leaf2-1",
        "agg2-1",
        "spine1",
        "agg1-1",
    ]


def test_another_owner_may_not_change_a_group_it_does_not_hold() -> None:
    tables = DesiredTables()
    tables.set_owner("holder", OwnerNeeds.build(groups={SW: [GROUP]}))
    tables.set_owner("flows-only", OwnerNeeds.build(flows={SW: [route(1, Output(1))]}))
    for owner in ("newcomer", "flows-only"):
        with pytest.raises(ConflictError):
            tables.set_owner(owner, OwnerNeeds.build(groups={SW: [GROUP_V2]}))
    assert tables.table(SW).groups[GROUP.group_id] == GROUP


def test_a_neighbour_weighing_zero_gets_no_bucket() -> None:
    fab, group = leaf1_spread(0.1, 0.0)
    assert [b.watch_port for b in group.buckets] == [fab.link("leaf1", "spine1").src.port]


def test_one_packet_in_per_second_is_still_a_meter() -> None:
    fab, needs = forwarding(packet_in_pps=1)
    leaf1 = fab.dpid("leaf1")
    assert needs[leaf1].meters[leaf1] == (MeterEntry(PACKET_IN_METER, 1, 0),)
