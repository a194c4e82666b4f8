"""What an OpenFlow 1.3 switch (Open vSwitch) rejects, for the fake tables.

:func:`check_flow` and :func:`check_group` raise :class:`OpenFlowError` where
a switch would answer a flow-mod or group-mod with an error: unknown fields,
missing OXM prerequisites, masks on fields that cannot be masked, value bits
outside a mask, instructions out of order or going backwards, VLAN actions on
a packet that has no tag, references to groups or meters that do not exist.
A little stricter than a switch in one place, so that pointless entries show
up: a FAST_FAILOVER bucket without a watch port (always live in Open vSwitch)
is accepted only as the last of several buckets. This module only checks; it
never changes a table.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from controller.fabric.model import Dpid
from controller.flowprog.entries import (
    OFPVID_PRESENT,
    Action,
    FlowEntry,
    GotoTable,
    GroupAction,
    GroupEntry,
    GroupType,
    Match,
    MatchValue,
    MeterEntry,
    PopVlan,
    PushVlan,
    SetField,
    WriteMetadata,
    split_instructions,
)

__all__ = ["OpenFlowError", "check_flow", "check_group", "held", "number"]

ETH_IPV4 = 0x0800
# OXM prerequisites (OpenFlow 1.3 section 7.2.3.6): a switch rejects a match
# that uses a field without the field it depends on.
PREREQ: dict[str, tuple[str, tuple[int, ...]]] = {
    "ipv4_src": ("eth_type", (ETH_IPV4,)),
    "ipv4_dst": ("eth_type", (ETH_IPV4,)),
    "ip_proto": ("eth_type", (ETH_IPV4, 0x86DD)),
    "ip_dscp": ("eth_type", (ETH_IPV4, 0x86DD)),
    "tcp_src": ("ip_proto", (6,)),
    "tcp_dst": ("ip_proto", (6,)),
    "udp_src": ("ip_proto", (17,)),
    "udp_dst": ("ip_proto", (17,)),
    "arp_op": ("eth_type", (0x0806,)),
    "arp_spa": ("eth_type", (0x0806,)),
    "arp_tpa": ("eth_type", (0x0806,)),
}
FIELDS = {"in_port", "metadata", "eth_src", "eth_dst", "eth_type", "vlan_vid", *PREREQ}
# Maskable in OpenFlow 1.3 (table 11), plus the L4 ports, which Open vSwitch
# matches with any bitwise mask since 1.6 (the specification lists them exact).
MASKABLE = {
    "metadata",
    "eth_src",
    "eth_dst",
    "vlan_vid",
    "ipv4_src",
    "ipv4_dst",
    "arp_spa",
    "arp_tpa",
    "tcp_src",
    "tcp_dst",
    "udp_src",
    "udp_dst",
}
SETTABLE = FIELDS - {"in_port", "metadata"}
LAST_TABLE = 254


class OpenFlowError(Exception):
    """What a switch would report with OFPT_ERROR (the fake raises it instead)."""

    def __init__(self, dpid: Dpid, code: str, detail: str) -> None:
        self.dpid = dpid
        self.code = code
        super().__init__(f"switch {dpid:#x}: {code}: {detail}")


def number(value: MatchValue | int | str) -> int:
    """A MAC, dotted IPv4 address or integer as an integer, for masked comparison."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.count(":") == 5:
        return int(value.replace(":", ""), 16)
    if isinstance(value, str) and value.count(".") == 3:
        return int(ipaddress.IPv4Address(value))
    raise ValueError(f"cannot compare match value {value!r}")


def _tag_guaranteed(value: MatchValue | None) -> bool:
    """Whether a ``vlan_vid`` match admits tagged packets only."""
    if isinstance(value, int):
        return bool(value & OFPVID_PRESENT)
    if isinstance(value, tuple):
        return bool(number(value[0]) & number(value[1]) & OFPVID_PRESENT)
    return False


def check_flow(
    dpid: Dpid,
    entry: FlowEntry,
    *,
    groups: Mapping[int, GroupEntry],
    meters: Mapping[int, MeterEntry],
) -> None:
    tagged = _check_match(dpid, entry.match)
    if entry.meter_id is not None and entry.meter_id not in meters:
        raise OpenFlowError(dpid, "BAD_METER", f"flow {entry.match} uses {entry.meter_id}")
    try:
        apply, _meta, goto = split_instructions(entry.actions)
    except ValueError as exc:
        raise OpenFlowError(dpid, "BAD_INSTRUCTION", str(exc)) from None
    if goto is not None and not entry.table_id < goto.table_id <= LAST_TABLE:
        raise OpenFlowError(dpid, "BAD_TABLE_ID", f"table {entry.table_id} -> {goto.table_id}")
    check_actions(dpid, apply, _FlowLabel(entry.match), groups=groups, tagged=tagged)


class _FlowLabel:
    """Names a flow entry in an error; the match is formatted only then."""

    __slots__ = ("match",)

    def __init__(self, match: Match) -> None:
        self.match = match

    def __str__(self) -> str:
        return f"flow {self.match}"


# Matches that passed the checks, with whether they guarantee a VLAN tag. An
# unmasked match is remembered by its shape: its validity depends on its field
# names, the values of the fields others depend on (``eth_type``, ``ip_proto``)
# and ``vlan_vid`` alone, so every new flow's 5-tuple match has one of a few
# shapes. A masked one is remembered as itself (the spread tables' entries meet
# every leaf).
_SHAPE_FIELDS = (*sorted({need for need, _ in PREREQ.values()}), "vlan_vid")
_VALID: dict[object, bool] = {}
_VALID_MAX = 4096


def _check_match(dpid: Dpid, match: Match) -> bool:
    """Fields, prerequisites and masks of ``match``; whether it admits tagged packets only."""
    fields = match.as_dict()
    key: object = match
    if tuple not in map(type, fields.values()):  # no masked value (all checked in C)
        key = (tuple(fields), *map(fields.get, _SHAPE_FIELDS))
    known = _VALID.get(key)
    if known is not None:
        return known
    for name, value in fields.items():
        if name not in FIELDS:
            raise OpenFlowError(dpid, "BAD_FIELD", f"{name} in {match}")
        need = PREREQ.get(name)
        if need is not None and fields.get(need[0]) not in need[1]:
            raise OpenFlowError(dpid, "BAD_PREREQ", f"{name} needs {need[0]}")
        if isinstance(value, tuple) and name not in MASKABLE:
            raise OpenFlowError(dpid, "BAD_MASK", f"{name} cannot be masked")
        if isinstance(value, tuple) and number(value[0]) & ~number(value[1]):
            raise OpenFlowError(dpid, "BAD_WILDCARDS", f"{name}={value}")
    tagged = _tag_guaranteed(fields.get("vlan_vid"))
    if len(_VALID) >= _VALID_MAX:
        _VALID.clear()
    _VALID[key] = tagged
    return tagged


def check_group(dpid: Dpid, grp: GroupEntry, *, groups: Mapping[int, GroupEntry]) -> None:
    what = f"group {grp.group_id:#x}"
    for bucket in grp.buckets:
        # Open vSwitch: "fast failover bucket requires watch_port or watch_group".
        if (
            grp.type is GroupType.FAST_FAILOVER
            and bucket.watch_port is None
            and bucket.watch_group is None
        ):
            raise OpenFlowError(dpid, "BAD_WATCH", what)
        if bucket.watch_group is not None and bucket.watch_group not in groups:
            raise OpenFlowError(dpid, "BAD_WATCH", f"{what} watches a missing group")
        if any(isinstance(a, WriteMetadata | GotoTable) for a in bucket.actions):
            raise OpenFlowError(dpid, "BAD_ACTION", f"{what}: an instruction in a bucket")
        check_actions(dpid, bucket.actions, what, groups=groups, tagged=False)


def check_actions(
    dpid: Dpid,
    actions: Iterable[Action],
    what: object,
    *,
    groups: Mapping[int, GroupEntry],
    tagged: bool,
) -> None:
    """Group references and VLAN consistency of one action list, in order.

    ``tagged``: the packet is known to carry a VLAN tag when the list starts;
    ``what`` names the list in errors (formatted only when one is raised).
    """
    for act in actions:
        match act:
            case GroupAction(group_id=gid) if gid not in groups:
                raise OpenFlowError(dpid, "BAD_OUT_GROUP", f"{what} -> {gid:#x}")
            case PushVlan(ethertype=ethertype):
                if ethertype not in (0x8100, 0x88A8):
                    raise OpenFlowError(dpid, "BAD_ARGUMENT", f"{what}: push {ethertype:#x}")
                if tagged:
                    raise AssertionError(f"{what}: the fake models a single VLAN tag")
                tagged = True
            case PopVlan():
                if not tagged:
                    raise OpenFlowError(dpid, "MATCH_INCONSISTENT", f"{what}: pop without tag")
                tagged = False
            case SetField(field=name, value=value):
                if name not in SETTABLE:
                    raise OpenFlowError(dpid, "BAD_SET_TYPE", f"{what}: set {name}")
                if name == "vlan_vid" and not tagged:
                    raise OpenFlowError(dpid, "MATCH_INCONSISTENT", f"{what}: set vid, no tag")
                if name == "vlan_vid" and not value & OFPVID_PRESENT:
                    raise OpenFlowError(dpid, "BAD_SET_ARGUMENT", f"{what}: vid {value:#x}")


def held(entry: FlowEntry) -> FlowEntry:
    """``entry`` as a switch holds it: without the controller's ``ingress`` mark
    (every field but that one, written out: ``dataclasses.replace`` costs a
    setup's worth of time per rule here)."""
    return FlowEntry(
        priority=entry.priority,
        match=entry.match,
        actions=entry.actions,
        cookie=entry.cookie,
        table_id=entry.table_id,
        idle_timeout=entry.idle_timeout,
        hard_timeout=entry.hard_timeout,
        send_flow_removed=entry.send_flow_removed,
        meter_id=entry.meter_id,
    )
