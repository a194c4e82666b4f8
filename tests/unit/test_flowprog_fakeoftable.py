"""The fake OpenFlow table itself: matching, OpenFlow errors, and packet walks.

The core tests trust what the fake says, so the fake's own rules are pinned here.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.devtools.fakeoftable import FakeFabric, OpenFlowError, field_matches, held
from controller.fabric.model import LinkId, PortRef
from controller.flowprog.entries import (
    IN_PORT,
    Bucket,
    FlowEntry,
    GotoTable,
    GroupAction,
    GroupEntry,
    GroupType,
    Match,
    MeterEntry,
    Output,
    PopVlan,
    PushVlan,
    SetField,
    ToController,
    WriteMetadata,
)
from controller.flowprog.plan import (
    FlowAdd,
    FlowDelete,
    GroupAdd,
    GroupDelete,
    GroupModify,
    MeterAdd,
    MeterDelete,
    MeterModify,
    Phase,
    Program,
)

A, B, C = 1, 2, 3
MAC = "02:00:00:00:00:07"
TAG = 0x1000 | 4001
FF = GroupType.FAST_FAILOVER


def flow(prio: int, actions: tuple = (Output(9),), **match: object) -> FlowEntry:
    return FlowEntry(prio, Match.of(**match), actions, cookie=0)  # type: ignore[arg-type]


def group(gid: int, gtype: GroupType, *ports: int) -> GroupEntry:
    return GroupEntry(gid, gtype, tuple(Bucket((Output(p),), watch_port=p) for p in ports))


def one_switch(*ops: object) -> FakeFabric:
    fake = FakeFabric(switches=[A])
    fake.apply_ops(A, ops)  # type: ignore[arg-type]
    return fake


# ------------------------------------------------------------------ matching
@pytest.mark.parametrize(
    ("want", "have", "hit"),
    [
        (("01:00:00:00:00:00", "01:00:00:00:00:00"), "ff:ff:ff:ff:ff:ff", True),
        (("01:00:00:00:00:00", "01:00:00:00:00:00"), "01:00:5e:00:00:01", True),
        (("01:00:00:00:00:00", "01:00:00:00:00:00"), "02:00:00:00:00:01", False),
        (("10.1.0.0", "255.255.0.0"), "10.1.200.3", True),
        (("10.1.0.0", "255.255.0.0"), "10.2.0.3", False),
        ("10.1.0.0/16", "10.1.9.9", True),
        ("10.1.0.0/16", "10.0.9.9", False),
        ((50000, 0xFFF0), 50015, True),
        ((50000, 0xFFF0), 50016, False),
        (4791, 4791, True),
        (4791, 4790, False),
        ("02:00:00:00:00:07", "02:00:00:00:00:07", True),
        (4791, None, False),  # a field the packet lacks never matches
    ],
)
def test_field_matching_handles_masks_prefixes_and_absent_fields(
    want: object, have: object, hit: bool
) -> None:
    assert field_matches(want, have) is hit  # type: ignore[arg-type]


# ---------------------------------------------------------------- flow table
def test_flow_add_replaces_same_priority_and_match_only() -> None:
    fake = one_switch(FlowAdd(flow(10, eth_dst=MAC)), FlowAdd(flow(20, eth_dst=MAC)))
    fake.apply_ops(A, [FlowAdd(flow(10, (Output(4),), eth_dst=MAC))])
    table = fake.switches[A].flows
    assert len(table) == 2
    assert table[(0, 10, Match.of(eth_dst=MAC))].actions == (Output(4),)
    assert table[(0, 20, Match.of(eth_dst=MAC))].actions == (Output(9),)


def test_flow_delete_is_strict_and_counts_misses() -> None:
    fake = one_switch(FlowAdd(flow(10, eth_dst=MAC)), FlowAdd(flow(20, eth_dst=MAC)))
    fake.apply_ops(A, [FlowDelete(flow(10, eth_dst=MAC)), FlowDelete(flow(30, eth_dst=MAC))])
    assert list(fake.switches[A].flows) == [(0, 20, Match.of(eth_dst=MAC))]
    assert fake.mods()["FlowDeleteMissing"] == 1


def test_ingress_metadata_is_not_stored() -> None:
    entry = FlowEntry(10, Match.of(eth_dst=MAC), (Output(1),), cookie=5, ingress=True)
    fake = one_switch(FlowAdd(entry))
    assert fake.switches[A].reported().flows[entry.key].ingress is False


def test_a_held_entry_keeps_every_field_but_the_ingress_mark() -> None:
    entry = FlowEntry(
        7,
        Match.of(eth_dst=MAC),
        (Output(1),),
        cookie=5,
        table_id=1,
        idle_timeout=30,
        hard_timeout=60,
        send_flow_removed=True,
        meter_id=3,
        ingress=True,
    )
    assert held(entry) == replace(entry, ingress=False)


@pytest.mark.parametrize(
    ("ops", "code"),
    [
        (
            [GroupAdd(group(7, GroupType.SELECT, 1)), GroupAdd(group(7, GroupType.SELECT, 2))],
            "GROUP_EXISTS",
        ),
        ([GroupModify(group(7, GroupType.SELECT, 1))], "UNKNOWN_GROUP"),
        ([GroupDelete(group(7, GroupType.SELECT, 1))], "UNKNOWN_GROUP"),
        ([FlowAdd(flow(10, (GroupAction(7),), eth_dst=MAC))], "BAD_OUT_GROUP"),
        (
            [
                GroupAdd(group(7, GroupType.SELECT, 1)),
                FlowAdd(flow(10, (GroupAction(7),), eth_dst=MAC)),
                GroupDelete(group(7, GroupType.SELECT, 1)),
            ],
            "GROUP_IN_USE",
        ),
        ([GroupAdd(GroupEntry(8, GroupType.FAST_FAILOVER, (Bucket((Output(1),)),)))], "BAD_WATCH"),
        ([MeterAdd(MeterEntry(1, 10)), MeterAdd(MeterEntry(1, 20))], "METER_EXISTS"),
        ([MeterModify(MeterEntry(1, 10))], "UNKNOWN_METER"),
        ([MeterDelete(MeterEntry(1, 10))], "UNKNOWN_METER"),
        ([FlowAdd(FlowEntry(1, Match(), (), cookie=0, meter_id=3))], "BAD_METER"),
        (
            [
                MeterAdd(MeterEntry(3, 10)),
                FlowAdd(FlowEntry(1, Match(), (), 0, meter_id=3)),
                MeterDelete(MeterEntry(3, 10)),
            ],
            "METER_IN_USE",
        ),
        ([FlowAdd(flow(10, ipv4_dst="10.0.0.1"))], "BAD_PREREQ"),
        ([FlowAdd(flow(10, eth_type=0x0800, ip_proto=6, udp_dst=4791))], "BAD_PREREQ"),
        (
            [FlowAdd(flow(10, eth_type=0x0800, ip_proto=6, tcp_dst=(50001, 0xFFF0)))],
            "BAD_WILDCARDS",
        ),
        ([FlowAdd(flow(10, vlan_pcp=3))], "BAD_FIELD"),
        ([FlowAdd(flow(10, eth_type=0x0800, ip_proto=(17, 0xFF)))], "BAD_MASK"),
        ([FlowAdd(flow(10, (PopVlan(), Output(1)), eth_dst=MAC))], "MATCH_INCONSISTENT"),
        ([FlowAdd(flow(10, (SetField("vlan_vid", TAG), Output(1))))], "MATCH_INCONSISTENT"),
        ([FlowAdd(flow(10, (PushVlan(), SetField("vlan_vid", 4001))))], "BAD_SET_ARGUMENT"),
        ([FlowAdd(flow(10, (PushVlan(), SetField("in_port", 3))))], "BAD_SET_TYPE"),
        ([FlowAdd(FlowEntry(1, Match(), (GotoTable(0),), 0, table_id=1))], "BAD_TABLE_ID"),
        ([FlowAdd(flow(1, (GotoTable(1), Output(2))))], "BAD_INSTRUCTION"),
        ([FlowAdd(flow(1, (GotoTable(1), WriteMetadata(1))))], "BAD_INSTRUCTION"),
        (
            [GroupAdd(GroupEntry(9, GroupType.INDIRECT, (Bucket((GotoTable(1),)),)))],
            "BAD_ACTION",
        ),
        (
            [GroupAdd(GroupEntry(8, FF, (Bucket((Output(1),)), Bucket((Output(2),), 0, 2))))],
            "BAD_WATCH",
        ),
    ],
)
def test_switch_errors_are_raised(ops: list, code: str) -> None:
    with pytest.raises(OpenFlowError) as err:
        one_switch(*ops)
    assert err.value.code == code


def test_a_disconnected_switch_refuses_operations_but_keeps_its_table() -> None:
    fake = one_switch(FlowAdd(flow(10, eth_dst=MAC)))
    fake.switches[A].connected = False
    with pytest.raises(OpenFlowError, match="NOT_CONNECTED"):
        fake.apply_ops(A, [FlowDelete(flow(10, eth_dst=MAC))])
    assert len(fake.switches[A].flows) == 1


def test_apply_runs_phases_in_order() -> None:
    grp = group(7, GroupType.SELECT, 1, 2)
    build, use = Phase(), Phase()
    build.add(A, [GroupAdd(grp)])
    use.add(A, [FlowAdd(flow(10, (GroupAction(7),), eth_dst=MAC))])
    FakeFabric(switches=[A]).apply(Program([build, use]))
    with pytest.raises(OpenFlowError, match="BAD_OUT_GROUP"):
        FakeFabric(switches=[A]).apply(Program([use, build]))


def test_table_hash_ignores_order_and_sees_every_change() -> None:
    e1, e2 = flow(10, eth_dst=MAC), flow(20, eth_type=0x0806)
    first, second = one_switch(FlowAdd(e1), FlowAdd(e2)), one_switch(FlowAdd(e2), FlowAdd(e1))
    assert first.table_hash(A) == second.table_hash(A)
    second.apply_ops(A, [FlowAdd(flow(20, (Output(3),), eth_type=0x0806))])
    assert first.table_hash(A) != second.table_hash(A)
    first.apply_ops(A, [GroupAdd(group(7, GroupType.SELECT, 1))])
    assert first.table_hash(A) != one_switch(FlowAdd(e1), FlowAdd(e2)).table_hash(A)


# --------------------------------------------------------------------- walks
def two_switches() -> FakeFabric:
    """A/1 <-> B/1 cabled; A/5 and B/5 are edge ports."""
    return FakeFabric(
        switches=[A, B],
        links=[LinkId(PortRef(A, 1), PortRef(B, 1)), LinkId(PortRef(B, 1), PortRef(A, 1))],
    )


def test_walk_takes_the_highest_priority_entry_and_crosses_links() -> None:
    fake = two_switches()
    fake.apply_ops(
        A, [FlowAdd(flow(0, (ToController(),))), FlowAdd(flow(5, (Output(1),), eth_dst=MAC))]
    )
    fake.apply_ops(B, [FlowAdd(flow(5, (Output(5),), eth_dst=MAC))])
    res = fake.walk(A, 5, {"eth_dst": MAC})
    assert res.only_to(PortRef(B, 5))
    assert res.paths == {(A, B)}
    other = fake.walk(A, 5, {"eth_dst": "02:00:00:00:00:08"})
    assert other.reached_controller and not other.delivered


def test_walk_reports_drops_hairpins_and_loops() -> None:
    fake = two_switches()
    fake.apply_ops(A, [FlowAdd(flow(5, (Output(1),), eth_dst=MAC)), FlowAdd(flow(1, ()))])
    fake.apply_ops(B, [FlowAdd(flow(5, (Output(1),), eth_dst=MAC))])
    hairpin = fake.walk(A, 5, {"eth_dst": MAC})  # B sends it back out of its in_port
    assert hairpin.dropped and not hairpin.delivered
    assert "in_port" in hairpin.terminals[0].why
    assert fake.walk(A, 5, {"eth_dst": "02:00:00:00:00:08"}).dropped  # empty actions
    assert fake.walk(B, 5, {"eth_type": 0x0800}).dropped  # no entry at all


def test_walk_detects_a_forwarding_loop() -> None:
    """A/2 -> B/2, B/3 -> C/3, C/4 -> A/4: each forwards to the next."""
    cables = [(PortRef(A, 2), PortRef(B, 2)), (PortRef(B, 3), PortRef(C, 3))]
    cables.append((PortRef(C, 4), PortRef(A, 4)))
    links = [LinkId(x, y) for a, b in cables for x, y in ((a, b), (b, a))]
    fake = FakeFabric(switches=[A, B, C], links=links)
    for dpid, out in ((A, 2), (B, 3), (C, 4)):
        fake.apply_ops(dpid, [FlowAdd(flow(5, (Output(out),)))])
    res = fake.walk(A, 9, {})
    assert res.looped and not res.delivered
    assert res.terminals[0].switches == (A, B, C, A)


def test_walk_explores_every_select_bucket_unless_live_only() -> None:
    fake = FakeFabric(switches=[A])
    fake.apply_ops(
        A,
        [GroupAdd(group(7, GroupType.SELECT, 1, 2, 3)), FlowAdd(flow(5, (GroupAction(7),)))],
    )
    assert fake.walk(A, 9, {}).delivered == {PortRef(A, 1), PortRef(A, 2), PortRef(A, 3)}
    fake.down.add(PortRef(A, 2))
    every = fake.walk(A, 9, {})
    assert every.dropped and every.delivered == {PortRef(A, 1), PortRef(A, 3)}
    live = fake.walk(A, 9, {}, live_select=True)
    assert not live.dropped and live.delivered == {PortRef(A, 1), PortRef(A, 3)}
    fake.down |= {PortRef(A, 1), PortRef(A, 3)}
    assert fake.walk(A, 9, {}, live_select=True).dropped


def test_walk_takes_the_first_live_failover_bucket() -> None:
    fake = FakeFabric(switches=[A])
    fake.apply_ops(
        A,
        [GroupAdd(group(8, GroupType.FAST_FAILOVER, 1, 2)), FlowAdd(flow(5, (GroupAction(8),)))],
    )
    assert fake.walk(A, 9, {}).only_to(PortRef(A, 1))
    fake.down.add(PortRef(A, 1))
    assert fake.walk(A, 9, {}).only_to(PortRef(A, 2))
    fake.down.add(PortRef(A, 2))
    assert fake.walk(A, 9, {}).dropped


def test_walk_drops_at_a_dead_cable_end() -> None:
    fake = two_switches()
    fake.apply_ops(A, [FlowAdd(flow(5, (Output(1),)))])
    fake.apply_ops(B, [FlowAdd(flow(5, (Output(5),)))])
    fake.down.add(PortRef(B, 1))
    assert fake.walk(A, 5, {}).dropped


def test_same_priority_overlap_is_flagged() -> None:
    fake = one_switch(FlowAdd(flow(5, eth_dst=MAC)), FlowAdd(flow(5, eth_type=0x0800)))
    with pytest.raises(AssertionError, match="overlapping"):
        fake.walk(A, 1, {"eth_dst": MAC, "eth_type": 0x0800})


def test_masked_l4_ports_with_their_prerequisites_are_accepted() -> None:
    fake = one_switch(
        FlowAdd(flow(10, (Output(1),), eth_type=0x0800, ip_proto=17, udp_src=(4, 0xC))),
        FlowAdd(flow(10, (Output(2),), eth_type=0x0800, ip_proto=6, tcp_src=(0, 0xC))),
    )
    udp = {"eth_type": 0x0800, "ip_proto": 17, "udp_src": 40005}  # bits 2-3 = 01
    assert fake.walk(A, 9, udp).only_to(PortRef(A, 1))
    assert fake.walk(A, 9, {**udp, "udp_src": 40009}).dropped  # bits 2-3 = 10
    tcp = {"eth_type": 0x0800, "ip_proto": 6, "tcp_src": 40000}
    assert fake.walk(A, 9, tcp).only_to(PortRef(A, 2))


def test_walk_continues_in_later_tables_with_the_metadata_written() -> None:
    fake = one_switch(
        FlowAdd(flow(5, (WriteMetadata(0xFA05), GotoTable(1)), eth_dst=MAC)),
        FlowAdd(
            FlowEntry(
                20,
                Match.of(metadata=0xFA05, eth_type=0x0800, ip_proto=17, udp_src=(1, 1)),
                (Output(1),),
                0,
                table_id=1,
            )
        ),
        FlowAdd(FlowEntry(10, Match.of(metadata=0xFA05), (Output(2),), 0, table_id=1)),
        FlowAdd(FlowEntry(10, Match.of(metadata=0xFA06), (Output(3),), 0, table_id=1)),
    )
    pkt = {"eth_dst": MAC, "eth_type": 0x0800, "ip_proto": 17, "udp_src": 7}
    assert fake.walk(A, 9, pkt).only_to(PortRef(A, 1))
    assert fake.walk(A, 9, {**pkt, "udp_src": 8}).only_to(PortRef(A, 2))
    missed = fake.walk(A, 9, {"eth_dst": "02:00:00:00:00:08"})
    assert missed.dropped and "table 0" in missed.terminals[0].why


def test_walk_follows_a_bounce_back_out_of_the_in_port_and_the_tag() -> None:
    """B sends packets for MAC out of 9, or, with 9 down, tagged back to A, which
    pops the tag and sends them out of 7."""
    fake = two_switches()
    live = GroupEntry(21, GroupType.INDIRECT, (Bucket(()),))  # watched: always live
    bounce = GroupEntry(
        20,
        FF,
        (
            Bucket((Output(9),), watch_port=9),
            Bucket((PushVlan(), SetField("vlan_vid", TAG), Output(IN_PORT)), watch_group=21),
        ),
    )
    unwatched = GroupEntry(22, FF, (Bucket((Output(9),), watch_port=9), Bucket((Output(8),))))
    with pytest.raises(OpenFlowError, match="BAD_WATCH"):  # as Open vSwitch refuses it
        fake.apply_ops(B, [GroupAdd(unwatched)])
    fake.apply_ops(
        B, [GroupAdd(live), GroupAdd(bounce), FlowAdd(flow(5, (GroupAction(20),), eth_dst=MAC))]
    )
    fake.apply_ops(
        A,
        [
            FlowAdd(flow(5, (Output(1),), eth_dst=MAC)),
            FlowAdd(flow(6, (PopVlan(), Output(7)), in_port=1, vlan_vid=TAG)),
        ],
    )
    assert fake.walk(A, 5, {"eth_dst": MAC}).only_to(PortRef(B, 9))
    fake.down.add(PortRef(B, 9))
    res = fake.walk(A, 5, {"eth_dst": MAC})
    assert res.only_to(PortRef(A, 7)) and res.max_bounces == 1
    assert res.terminals[0].switches == (A, B, A)
    fake.apply_ops(A, [FlowAdd(flow(6, (Output(7),), in_port=1, vlan_vid=TAG))])
    tagged = fake.walk(A, 5, {"eth_dst": MAC})
    assert tagged.delivered == {PortRef(A, 7)} and not tagged.only_to(PortRef(A, 7))
    assert tagged.terminals[0].tagged


def test_a_tagged_packet_sent_round_again_is_a_loop() -> None:
    fake = two_switches()
    tag = (PushVlan(), SetField("vlan_vid", TAG), Output(1))
    fake.apply_ops(
        A, [FlowAdd(flow(6, tag, in_port=5)), FlowAdd(flow(6, (Output(IN_PORT),), in_port=1))]
    )
    fake.apply_ops(B, [FlowAdd(flow(5, (Output(IN_PORT),)))])
    res = fake.walk(A, 5, {"eth_dst": MAC})
    assert res.looped and not res.delivered
    assert res.terminals[0].switches == (A, B, A, B)  # A twice: once untagged, once tagged


def test_vlan_vid_matches_untagged_as_none_and_tagged_by_present_bit() -> None:
    fake = one_switch(
        FlowAdd(flow(5, (Output(1),), vlan_vid=0)),
        FlowAdd(flow(5, (Output(2),), vlan_vid=(0x1000, 0x1000))),
    )
    assert fake.walk(A, 9, {}).only_to(PortRef(A, 1))
    assert fake.walk(A, 9, {"vlan_vid": TAG}).delivered == {PortRef(A, 2)}


def test_group_users_are_counted_through_a_batch() -> None:
    """A batch counts a group's users from its first group delete on (not scanning
    the tables at each): later adds, replacements and deletes keep the count right."""
    sel7, sel8 = group(7, GroupType.SELECT, 1), group(8, GroupType.SELECT, 2)
    uses7 = flow(10, (GroupAction(7),), eth_dst=MAC)
    count_from_here = [GroupAdd(sel8), GroupDelete(sel8)]
    with pytest.raises(OpenFlowError, match="GROUP_IN_USE"):  # a user added after counting
        one_switch(GroupAdd(sel7), *count_from_here, FlowAdd(uses7), GroupDelete(sel7))
    fake = one_switch(  # a user deleted, or replaced by an entry without the group
        GroupAdd(sel7),
        FlowAdd(uses7),
        FlowAdd(flow(20, (GroupAction(7),), eth_dst=MAC)),
        *count_from_here,
        FlowDelete(uses7),
        FlowAdd(flow(20, eth_dst=MAC)),
        GroupDelete(sel7),
    )
    assert 7 not in fake.switches[A].groups
    # Counting ends with the batch: a table changed directly is seen by the next one.
    fake.apply_ops(A, [GroupAdd(sel7), GroupAdd(sel8), GroupDelete(sel8)])
    fake.switches[A].flows[uses7.key] = uses7
    with pytest.raises(OpenFlowError, match="GROUP_IN_USE"):
        fake.apply_ops(A, [GroupDelete(sel7)])
