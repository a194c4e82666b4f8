"""What the shim sends comes back equal from a switch's statistics replies.

Each entry is turned into the Ryu flow-mod or group-mod the shim sends,
serialised to OpenFlow wire bytes, re-framed as the flow-stats or group-desc
reply a switch answers with, parsed by Ryu and decoded by the shim. If any
field (masked matches, metadata, VLAN actions, goto-table, a watch-less
bucket) failed to survive, reconnect reconciling would rewrite the entry
forever.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest

from controller.flowprog.entries import (
    IN_PORT,
    Cookie,
    CookieKind,
    FlowEntry,
    GotoTable,
    GroupAction,
    GroupEntry,
    Match,
    Output,
    PopVlan,
    ToController,
    WriteMetadata,
)
from controller.flowprog.groups import failover_chain, select_group
from controller.flowprog.plan import FlowAdd, GroupAdd
from controller.flowprog.repair import TAG, bounce_group, delivery_entry, tagged_drop
from controller.flowprog.spread import SPREAD_TABLE, compile_set, next_hop_set
from controller.southbound import framework

framework.select("ryu")
from controller.southbound import ofmsg  # noqa: E402  (needs the framework selected)

ofp, parser = framework.fw.ofp, framework.fw.parser
DP = SimpleNamespace(ofproto=ofp, ofproto_parser=parser)
HOST = Cookie(CookieKind.HOST_ROUTE).encode()


def wire_flow(entry: FlowEntry) -> FlowEntry:
    msg = ofmsg.op_to_msg(DP, FlowAdd(entry))
    msg.serialize()
    tail = bytes(msg.buf[ofp.OFP_FLOW_MOD_SIZE - ofp.OFP_MATCH_SIZE :])  # match + instructions
    head = struct.pack(
        ofp.OFP_FLOW_STATS_0_PACK_STR,
        ofp.OFP_FLOW_STATS_0_SIZE + len(tail),
        entry.table_id,
        1,
        0,
        entry.priority,
        entry.idle_timeout,
        entry.hard_timeout,
        ofp.OFPFF_SEND_FLOW_REM if entry.send_flow_removed else 0,
        entry.cookie,
        10,
        1000,
    )
    decoded: FlowEntry = ofmsg.flow_from_stats(parser.OFPFlowStats.parser(head + tail, 0))
    return decoded


def wire_group(group: GroupEntry) -> GroupEntry | None:
    msg = ofmsg.op_to_msg(DP, GroupAdd(group))
    msg.serialize()
    buckets = bytes(msg.buf[ofp.OFP_GROUP_MOD_SIZE :])
    head = struct.pack(
        ofp.OFP_GROUP_DESC_STATS_PACK_STR,
        ofp.OFP_GROUP_DESC_STATS_SIZE + len(buckets),
        msg.type,
        group.group_id,
    )
    decoded: GroupEntry | None = ofmsg.group_from_desc(
        parser.OFPGroupDescStats.parser(head + buckets, 0)
    )
    return decoded


_SET = next_hop_set((1, 2, 3), weights=None, distance=2, dpid=9)
assert _SET is not None
SPREAD_ENTRIES, SPREAD_GROUPS = compile_set(_SET, cookie=HOST)

FLOWS = [
    pytest.param(
        FlowEntry(20000, Match.of(eth_dst="02:00:00:00:00:01"), _SET.route_actions(), HOST),
        id="route-into-the-spread-table",
    ),
    pytest.param(SPREAD_ENTRIES[1], id="masked-udp-source-bucket"),
    pytest.param(SPREAD_ENTRIES[len(SPREAD_ENTRIES) // 2 + 1], id="masked-tcp-source-bucket"),
    pytest.param(SPREAD_ENTRIES[-1], id="spread-table-fallback"),
    pytest.param(delivery_entry("02:00:00:00:00:02", 3, cookie=HOST), id="tagged-delivery-pop"),
    pytest.param(tagged_drop(cookie=HOST), id="tagged-drop"),
    pytest.param(
        FlowEntry(50000, Match.of(in_port=1, vlan_vid=TAG), (GroupAction(0x20000001),), HOST),
        id="tagged-return",
    ),
    pytest.param(
        FlowEntry(
            40000,
            Match.of(eth_type=0x0800, ip_proto=17, ipv4_src="10.0.0.1", udp_src=(8, 0x38)),
            (WriteMetadata(0xFA00000012345678), GotoTable(SPREAD_TABLE)),
            Cookie(CookieKind.FLOW, 7, 2).encode(),
            idle_timeout=30,
            send_flow_removed=True,
        ),
        id="provisional-flow-rule",
    ),
    pytest.param(FlowEntry(0, Match(), (ToController(),), HOST, meter_id=1), id="metered-miss"),
]


@pytest.mark.parametrize("entry", FLOWS)
def test_flow_entries_survive_the_wire(entry: FlowEntry) -> None:
    back = wire_flow(entry)
    assert back.same_on_switch(entry), (back, entry)
    assert back.key == entry.key  # (table, priority, match): where reconcile looks it up


@pytest.mark.parametrize(
    "group",
    [
        pytest.param(bounce_group(4), id="bounce-push-set-vid-in-port-no-watch"),
        pytest.param(failover_chain((3, 1, 2)), id="failover-chain"),
        pytest.param(SPREAD_GROUPS[-1], id="select-fallback"),
        pytest.param(select_group((1, 2), weights={1: 30, 2: 10}), id="weighted-select"),
    ],
)
def test_groups_survive_the_wire(group: GroupEntry) -> None:
    assert wire_group(group) == group


def test_the_switch_reports_the_vid_with_its_present_bit() -> None:
    (bucket,) = [b for b in bounce_group(4).buckets if b.watch_port is None]
    actions = ofmsg._actions(bucket.actions)
    set_vid = next(a for a in actions if isinstance(a, parser.OFPActionSetField))
    assert set_vid.key == "vlan_vid" and set_vid.value == ofp.OFPVID_PRESENT | 4001
    assert any(isinstance(a, parser.OFPActionOutput) and a.port == IN_PORT for a in actions)
    back = wire_flow(delivery_entry("02:00:00:00:00:02", 3, cookie=HOST))
    assert back.match.get("vlan_vid") == ofp.OFPVID_PRESENT | 4001
    assert back.actions == (PopVlan(), Output(3))


def test_a_slave_asks_for_controller_action_packet_ins_only() -> None:
    from controller.engine.outputs import SlavePacketIns

    msg = ofmsg.request_to_msg(DP, SlavePacketIns(7))
    msg.serialize()
    assert msg.msg_type == ofp.OFPT_SET_ASYNC
    # The wire body: [master, slave] masks of packet-in, port-status, flow-removed.
    masks = struct.unpack_from(ofp.OFP_ASYNC_CONFIG_PACK_STR, msg.buf, ofp.OFP_HEADER_SIZE)
    pin_master, pin_slave, ps_master, ps_slave, fr_master, fr_slave = masks
    assert pin_slave == 1 << ofp.OFPR_ACTION  # not table misses, not TTL errors
    assert pin_master == 1 << ofp.OFPR_NO_MATCH | 1 << ofp.OFPR_ACTION  # as master: defaults
    assert ps_master == ps_slave == 0b111
    assert fr_master == 0b1111 and fr_slave == 0  # flow expiry is the leader's business
