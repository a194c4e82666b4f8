"""Translate between the engine's plain data and OpenFlow 1.3 messages (Ryu or os-ken).

Both directions live here so that what we send and what a switch reports back
normalise to the same values: ``FlowEntry`` built from a flow-stats reply
compares equal to the one that produced the flow-mod. This module builds and
decodes messages but never sends them and decides nothing.
"""

from __future__ import annotations

from controller.engine.inputs import FlowStat, SwitchError
from controller.engine.outputs import (
    FlowStatsRequest,
    PacketOut,
    PortStatsRequest,
    Request,
    RoleRequest,
    SlavePacketIns,
    TablePart,
    TableRead,
)
from controller.fabric.model import Port
from controller.flowprog.entries import (
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
    split_instructions,
)
from controller.flowprog.plan import (
    Barrier,
    FlowAdd,
    FlowDelete,
    GroupAdd,
    GroupDelete,
    GroupModify,
    MeterAdd,
    MeterDelete,
    MeterModify,
)
from controller.southbound.framework import fw
from controller.telemetry import PortCounters

__all__ = [
    "op_to_msg",
    "flow_from_stats",
    "group_from_desc",
    "meter_from_config",
    "msg_type",
    "request_to_msg",
    "packet_out_to_msg",
    "set_config_msg",
    "barrier_msg",
    "port_from_desc",
    "port_counters",
    "flow_stats",
    "switch_error",
    "more_follows",
    "is_port_deleted",
    "is_idle_removal",
]

if not fw.name:
    raise ImportError("select the southbound framework (framework.select) before importing ofmsg")
ofp = fw.ofp
parser = fw.parser

_GROUP_TYPES = {
    GroupType.SELECT: ofp.OFPGT_SELECT,
    GroupType.FAST_FAILOVER: ofp.OFPGT_FF,
    GroupType.ALL: ofp.OFPGT_ALL,
    GroupType.INDIRECT: ofp.OFPGT_INDIRECT,
}
_GROUP_TYPES_BACK = {v: k for k, v in _GROUP_TYPES.items()}


def _actions(actions):
    out = []
    for act in actions:
        if isinstance(act, Output):
            out.append(parser.OFPActionOutput(act.port, 0))
        elif isinstance(act, GroupAction):
            out.append(parser.OFPActionGroup(act.group_id))
        elif isinstance(act, ToController):
            out.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER))
        elif isinstance(act, PushVlan):
            out.append(parser.OFPActionPushVlan(act.ethertype))
        elif isinstance(act, PopVlan):
            out.append(parser.OFPActionPopVlan())
        elif isinstance(act, SetField):
            out.append(parser.OFPActionSetField(**{act.field: act.value}))
        else:  # pragma: no cover - instructions are split off before
            raise TypeError(f"not an action {act!r}")
    return out


def _instructions(entry: FlowEntry):
    """OpenFlow's fixed order: meter, apply-actions, write-metadata, goto-table."""
    apply, meta, goto = split_instructions(entry.actions)
    inst = []
    if entry.meter_id is not None:
        inst.append(parser.OFPInstructionMeter(entry.meter_id, ofp.OFPIT_METER))
    if apply:
        inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, _actions(apply)))
    if meta is not None:
        inst.append(parser.OFPInstructionWriteMetadata(meta.value, meta.mask))
    if goto is not None:
        inst.append(parser.OFPInstructionGotoTable(goto.table_id))
    return inst


def _flow_mod(dp, entry: FlowEntry, command: int):
    flags = ofp.OFPFF_SEND_FLOW_REM if entry.send_flow_removed else 0
    return parser.OFPFlowMod(
        datapath=dp,
        cookie=entry.cookie,
        cookie_mask=0,
        table_id=entry.table_id,
        command=command,
        idle_timeout=entry.idle_timeout,
        hard_timeout=entry.hard_timeout,
        priority=entry.priority,
        buffer_id=ofp.OFP_NO_BUFFER,
        out_port=ofp.OFPP_ANY,
        out_group=ofp.OFPG_ANY,
        flags=flags,
        match=parser.OFPMatch(**entry.match.as_dict()),
        instructions=_instructions(entry) if command != ofp.OFPFC_DELETE_STRICT else [],
    )


def _buckets(group: GroupEntry):
    return [
        parser.OFPBucket(
            weight=b.weight,
            watch_port=b.watch_port if b.watch_port is not None else ofp.OFPP_ANY,
            watch_group=b.watch_group if b.watch_group is not None else ofp.OFPG_ANY,
            actions=_actions(b.actions),
        )
        for b in group.buckets
    ]


def _group_mod(dp, group: GroupEntry, command: int):
    return parser.OFPGroupMod(
        dp,
        command,
        _GROUP_TYPES[group.type],
        group.group_id,
        _buckets(group) if command != ofp.OFPGC_DELETE else [],
    )


def _meter_mod(dp, meter: MeterEntry, command: int):
    flags = ofp.OFPMF_PKTPS | (ofp.OFPMF_BURST if meter.burst else 0)
    bands = (
        [parser.OFPMeterBandDrop(rate=meter.rate_pps, burst_size=meter.burst)]
        if command != ofp.OFPMC_DELETE
        else []
    )
    return parser.OFPMeterMod(dp, command, flags, meter.meter_id, bands)


def op_to_msg(dp, op):
    """The Ryu message for one plan operation."""
    match op:
        case FlowAdd(entry=entry):
            return _flow_mod(dp, entry, ofp.OFPFC_ADD)
        case FlowDelete(entry=entry):
            return _flow_mod(dp, entry, ofp.OFPFC_DELETE_STRICT)
        case GroupAdd(group=group):
            return _group_mod(dp, group, ofp.OFPGC_ADD)
        case GroupModify(group=group):
            return _group_mod(dp, group, ofp.OFPGC_MODIFY)
        case GroupDelete(group=group):
            return _group_mod(dp, group, ofp.OFPGC_DELETE)
        case MeterAdd(meter=meter):
            return _meter_mod(dp, meter, ofp.OFPMC_ADD)
        case MeterModify(meter=meter):
            return _meter_mod(dp, meter, ofp.OFPMC_MODIFY)
        case MeterDelete(meter=meter):
            return _meter_mod(dp, meter, ofp.OFPMC_DELETE)
        case Barrier():
            return parser.OFPBarrierRequest(dp)
    raise TypeError(f"unknown operation {op!r}")


def msg_type(msg) -> str:
    """Short bounded name of a message type, for metrics."""
    return type(msg).__name__.removeprefix("OFP")


# ----------------------------------------------------------- switch -> entries
def _actions_back(actions):
    out = []
    for act in actions:
        if isinstance(act, parser.OFPActionOutput):
            out.append(ToController() if act.port == ofp.OFPP_CONTROLLER else Output(act.port))
        elif isinstance(act, parser.OFPActionGroup):
            out.append(GroupAction(act.group_id))
        elif isinstance(act, parser.OFPActionPushVlan):
            out.append(PushVlan(act.ethertype))
        elif isinstance(act, parser.OFPActionPopVlan):
            out.append(PopVlan())
        elif isinstance(act, parser.OFPActionSetField) and not isinstance(act.value, tuple):
            out.append(SetField(act.key, act.value))
        else:
            # Something we never install: keep a marker so it compares unequal.
            out.append(Output(-1))
    return tuple(out)


def _match_back(match) -> Match:
    fields = []
    for name, value in match.items():
        if isinstance(value, list):
            value = tuple(value)
        fields.append((name, value))
    return Match(tuple(sorted(fields)))


def flow_from_stats(stats) -> FlowEntry:
    apply: tuple = ()
    meta: tuple = ()
    goto: tuple = ()
    meter_id = None
    for inst in stats.instructions:
        if isinstance(inst, parser.OFPInstructionActions) and inst.type == ofp.OFPIT_APPLY_ACTIONS:
            apply = _actions_back(inst.actions)
        elif isinstance(inst, parser.OFPInstructionMeter):
            meter_id = inst.meter_id
        elif isinstance(inst, parser.OFPInstructionWriteMetadata):
            meta = (WriteMetadata(inst.metadata, inst.metadata_mask),)
        elif isinstance(inst, parser.OFPInstructionGotoTable):
            goto = (GotoTable(inst.table_id),)
        else:
            apply = (*apply, Output(-1))
    return FlowEntry(
        priority=stats.priority,
        match=_match_back(stats.match),
        actions=(*apply, *meta, *goto),
        cookie=stats.cookie,
        table_id=stats.table_id,
        idle_timeout=stats.idle_timeout,
        hard_timeout=stats.hard_timeout,
        send_flow_removed=bool(stats.flags & ofp.OFPFF_SEND_FLOW_REM),
        meter_id=meter_id,
    )


def group_from_desc(desc) -> GroupEntry | None:
    gtype = _GROUP_TYPES_BACK.get(desc.type)
    if gtype is None:
        return None
    buckets = tuple(
        Bucket(
            actions=_actions_back(b.actions),
            weight=b.weight,
            watch_port=None if b.watch_port == ofp.OFPP_ANY else b.watch_port,
            watch_group=None if b.watch_group == ofp.OFPG_ANY else b.watch_group,
        )
        for b in desc.buckets
    )
    return GroupEntry(desc.group_id, gtype, buckets)


def meter_from_config(conf) -> MeterEntry | None:
    drops = [b for b in conf.bands if isinstance(b, parser.OFPMeterBandDrop)]
    if len(drops) != 1 or not conf.flags & ofp.OFPMF_PKTPS:
        return MeterEntry(conf.meter_id, rate_pps=-1)  # unequal to anything we want
    burst = drops[0].burst_size if conf.flags & ofp.OFPMF_BURST else 0
    return MeterEntry(conf.meter_id, rate_pps=drops[0].rate, burst=burst)


# ------------------------------------------------------- other messages, both ways
def request_to_msg(dp, req: Request):
    """The Ryu message for an engine request (table read or statistics)."""
    match req:
        case TableRead(part=TablePart.PORTS):
            return parser.OFPPortDescStatsRequest(dp, 0)
        case TableRead(part=TablePart.FLOWS):
            return parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY)
        case TableRead(part=TablePart.GROUPS):
            return parser.OFPGroupDescStatsRequest(dp, 0)
        case TableRead(part=TablePart.METERS):
            return parser.OFPMeterConfigStatsRequest(dp, 0, ofp.OFPM_ALL)
        case PortStatsRequest():
            return parser.OFPPortStatsRequest(dp, 0, ofp.OFPP_ANY)
        case FlowStatsRequest(cookie=cookie, mask=mask):
            return parser.OFPFlowStatsRequest(
                dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, cookie, mask
            )
        case RoleRequest(master=master, generation=generation):
            role = ofp.OFPCR_ROLE_MASTER if master else ofp.OFPCR_ROLE_SLAVE
            return parser.OFPRoleRequest(dp, role, generation)
        case SlavePacketIns():
            # [master/equal, slave] masks: the master's are OpenFlow's defaults; a
            # slave also gets packet-ins of output:CONTROLLER actions (LLDP).
            packet_in = 1 << ofp.OFPR_NO_MATCH | 1 << ofp.OFPR_ACTION
            port_status = 1 << ofp.OFPPR_ADD | 1 << ofp.OFPPR_DELETE | 1 << ofp.OFPPR_MODIFY
            removed = (
                1 << ofp.OFPRR_IDLE_TIMEOUT
                | 1 << ofp.OFPRR_HARD_TIMEOUT
                | 1 << ofp.OFPRR_DELETE
                | 1 << ofp.OFPRR_GROUP_DELETE
            )
            return parser.OFPSetAsync(
                dp, [packet_in, 1 << ofp.OFPR_ACTION], [port_status, port_status], [removed, 0]
            )
    raise TypeError(f"unknown request {req!r}")


def packet_out_to_msg(dp, pkt: PacketOut):
    port = pkt.out_port if pkt.out_port is not None else ofp.OFPP_TABLE
    in_port = pkt.in_port if pkt.in_port is not None else ofp.OFPP_CONTROLLER
    return parser.OFPPacketOut(
        datapath=dp,
        buffer_id=ofp.OFP_NO_BUFFER,
        in_port=in_port,
        actions=[parser.OFPActionOutput(port, 0)],
        data=pkt.data,
    )


def set_config_msg(dp):
    """Whole packets to the controller (no switch buffering)."""
    return parser.OFPSetConfig(dp, ofp.OFPC_FRAG_NORMAL, ofp.OFPCML_NO_BUFFER)


def barrier_msg(dp):
    return parser.OFPBarrierRequest(dp)


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def port_from_desc(p) -> Port:
    up = not (p.state & ofp.OFPPS_LINK_DOWN) and not (p.config & ofp.OFPPC_PORT_DOWN)
    return Port(
        port_no=p.port_no,
        name=_text(p.name),
        hw_addr=p.hw_addr,
        up=up,
        speed_bps=float(p.curr_speed) * 1000.0,
    )


def port_counters(body) -> list[tuple[int, PortCounters]]:
    """Counters of the physical ports in a port-stats reply (part)."""
    return [
        (
            s.port_no,
            PortCounters(
                rx_bytes=s.rx_bytes,
                tx_bytes=s.tx_bytes,
                rx_packets=s.rx_packets,
                tx_packets=s.tx_packets,
                rx_dropped=s.rx_dropped,
                tx_dropped=s.tx_dropped,
                rx_errors=s.rx_errors,
                tx_errors=s.tx_errors,
            ),
        )
        for s in body
        if s.port_no < ofp.OFPP_MAX
    ]


def flow_stats(body) -> list[FlowStat]:
    return [FlowStat(flow_from_stats(s), s.byte_count) for s in body]


_ERROR_NAMES = {
    getattr(ofp, n): n.removeprefix("OFPET_").lower() for n in dir(ofp) if n.startswith("OFPET_")
}


def switch_error(msg) -> SwitchError:
    return SwitchError(kind=_ERROR_NAMES.get(msg.type, "unknown"), code=msg.code, xid=msg.xid)


def more_follows(msg) -> bool:
    """Whether a multipart reply has further parts."""
    return bool(msg.flags & ofp.OFPMPF_REPLY_MORE)


def is_port_deleted(msg) -> bool:
    return msg.reason == ofp.OFPPR_DELETE


def is_idle_removal(msg) -> bool:
    return msg.reason == ofp.OFPRR_IDLE_TIMEOUT
