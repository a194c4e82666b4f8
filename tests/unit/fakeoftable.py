"""A fake OpenFlow fabric: apply the core's programs to in-memory tables, then walk packets.

Tests assert forwarding *behaviour* ("does h1's packet reach h4's port, and
nowhere else?") instead of message bytes. :class:`FakeFabric` keeps per-switch
flow, group and meter tables and the physical cabling; :meth:`FakeFabric.apply`
applies a :class:`~controller.flowprog.plan.Program` the way an OpenFlow 1.3
switch would, raising :class:`OpenFlowError` where a switch would answer with
an error (and a little stricter, so that wasted or mis-ordered operations show
up); :meth:`FakeFabric.walk` follows a packet through every branch it can take.
This module only simulates: it never decides anything the core should decide.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from controller.fabric.model import Dpid, LinkId, PortRef
from controller.flowprog.entries import (
    Action,
    EntryKey,
    FlowEntry,
    GroupAction,
    GroupEntry,
    GroupType,
    MatchValue,
    MeterEntry,
    Output,
    ToController,
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
    Op,
    Phase,
    Program,
)
from controller.flowprog.tables import SwitchTable

__all__ = [
    "OpenFlowError",
    "FakeSwitch",
    "FakeFabric",
    "Terminal",
    "WalkResult",
]

ETH_IPV4 = 0x0800
# OXM prerequisites (OpenFlow 1.3 section 7.2.3.6): a switch rejects a match
# that uses a field without the field it depends on.
_PREREQ: dict[str, tuple[str, tuple[int, ...]]] = {
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
_FIELDS = {"in_port", "eth_src", "eth_dst", "eth_type", "vlan_vid", *_PREREQ}


class OpenFlowError(Exception):
    """What a switch would report with OFPT_ERROR (the fake raises it instead)."""

    def __init__(self, dpid: Dpid, code: str, detail: str) -> None:
        self.dpid = dpid
        self.code = code
        super().__init__(f"switch {dpid:#x}: {code}: {detail}")


def _number(value: MatchValue | int | str) -> int:
    """A MAC, dotted IPv4 address or integer as an integer, for masked comparison."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.count(":") == 5:
        return int(value.replace(":", ""), 16)
    if isinstance(value, str) and value.count(".") == 3:
        return int(ipaddress.IPv4Address(value))
    raise ValueError(f"cannot compare match value {value!r}")


def field_matches(want: MatchValue, have: int | str | None) -> bool:
    """Whether a packet's field value ``have`` satisfies the match value ``want``."""
    if have is None:
        return False
    if isinstance(want, tuple):
        value, mask = _number(want[0]), _number(want[1])
        return _number(have) & mask == value & mask
    if isinstance(want, str) and "/" in want:  # "10.0.0.0/24" is accepted by Ryu too
        return ipaddress.IPv4Address(_number(have)) in ipaddress.IPv4Network(want)
    return _number(have) == _number(want)


def _live(bucket_watch: int | None, dpid: Dpid, down: set[PortRef]) -> bool:
    return bucket_watch is None or PortRef(dpid, bucket_watch) not in down


@dataclass
class FakeSwitch:
    """One switch's tables. They survive a disconnect (fail-secure mode)."""

    dpid: Dpid
    flows: dict[EntryKey, FlowEntry] = field(default_factory=dict)
    groups: dict[int, GroupEntry] = field(default_factory=dict)
    meters: dict[int, MeterEntry] = field(default_factory=dict)
    connected: bool = True
    mods: Counter[str] = field(default_factory=Counter)  # operations applied, by type

    def reported(self) -> SwitchTable:
        """What the switch answers to flow/group/meter stats requests."""
        return SwitchTable(
            flows=dict(self.flows), groups=dict(self.groups), meters=dict(self.meters)
        )

    def table_hash(self) -> str:
        text = repr(
            (
                sorted(repr(e) for e in self.flows.values()),
                sorted(repr(g) for g in self.groups.values()),
                sorted(repr(m) for m in self.meters.values()),
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def apply(self, op: Op, *, replay: bool = False) -> None:
        """Apply ``op``. ``replay``: the op was applied before; adding an identical
        group or meter again, or deleting one already gone, only earns the error a
        real switch would send, without changing its tables."""
        if not self.connected:
            raise OpenFlowError(self.dpid, "NOT_CONNECTED", f"{op} sent to a disconnected switch")
        if replay and _replay_is_noop(self, op):
            return
        self.mods[type(op).__name__] += 1
        match op:
            case FlowAdd(entry=entry):
                self._check_flow(entry)
                # `ingress` is controller metadata; a switch never reports it back.
                self.flows[entry.key] = replace(entry, ingress=False)
            case FlowDelete(entry=entry):
                if self.flows.pop(entry.key, None) is None:
                    self.mods["FlowDeleteMissing"] += 1
            case GroupAdd(group=grp):
                if grp.group_id in self.groups:
                    raise OpenFlowError(self.dpid, "GROUP_EXISTS", f"group {grp.group_id:#x}")
                self._check_group(grp)
                self.groups[grp.group_id] = grp
            case GroupModify(group=grp):
                if grp.group_id not in self.groups:
                    raise OpenFlowError(self.dpid, "UNKNOWN_GROUP", f"modify {grp.group_id:#x}")
                self._check_group(grp)
                self.groups[grp.group_id] = grp
            case GroupDelete(group=grp):
                # OpenFlow tolerates deleting a missing group; a missing one here
                # means the controller's idea of the switch is wrong, so fail.
                if grp.group_id not in self.groups:
                    raise OpenFlowError(self.dpid, "UNKNOWN_GROUP", f"delete {grp.group_id:#x}")
                users = self._group_users(grp.group_id)
                if users:
                    raise OpenFlowError(
                        self.dpid, "GROUP_IN_USE", f"{grp.group_id:#x} used by {users[0]}"
                    )
                del self.groups[grp.group_id]
            case MeterAdd(meter=meter):
                if meter.meter_id in self.meters:
                    raise OpenFlowError(self.dpid, "METER_EXISTS", f"meter {meter.meter_id}")
                self.meters[meter.meter_id] = meter
            case MeterModify(meter=meter):
                if meter.meter_id not in self.meters:
                    raise OpenFlowError(self.dpid, "UNKNOWN_METER", f"modify {meter.meter_id}")
                self.meters[meter.meter_id] = meter
            case MeterDelete(meter=meter):
                if meter.meter_id not in self.meters:
                    raise OpenFlowError(self.dpid, "UNKNOWN_METER", f"delete {meter.meter_id}")
                if any(e.meter_id == meter.meter_id for e in self.flows.values()):
                    raise OpenFlowError(self.dpid, "METER_IN_USE", f"meter {meter.meter_id}")
                del self.meters[meter.meter_id]
            case Barrier():
                pass

    def _check_flow(self, entry: FlowEntry) -> None:
        fields = entry.match.as_dict()
        for name, value in fields.items():
            if name not in _FIELDS:
                raise OpenFlowError(self.dpid, "BAD_FIELD", f"{name} in {entry.match}")
            need = _PREREQ.get(name)
            if need is not None and fields.get(need[0]) not in need[1]:
                raise OpenFlowError(self.dpid, "BAD_PREREQ", f"{name} needs {need[0]}")
            if isinstance(value, tuple) and _number(value[0]) & ~_number(value[1]):
                raise OpenFlowError(self.dpid, "BAD_WILDCARDS", f"{name}={value}")
        if entry.meter_id is not None and entry.meter_id not in self.meters:
            raise OpenFlowError(self.dpid, "BAD_METER", f"flow {entry.match} uses {entry.meter_id}")
        self._check_actions(entry.actions, f"flow {entry.match}")

    def _check_group(self, grp: GroupEntry) -> None:
        for bucket in grp.buckets:
            if grp.type is GroupType.FAST_FAILOVER and bucket.watch_port is None:
                raise OpenFlowError(self.dpid, "BAD_WATCH", f"group {grp.group_id:#x}")
            self._check_actions(bucket.actions, f"group {grp.group_id:#x}")

    def _check_actions(self, actions: Iterable[Action], what: str) -> None:
        for act in actions:
            if isinstance(act, GroupAction) and act.group_id not in self.groups:
                raise OpenFlowError(self.dpid, "BAD_OUT_GROUP", f"{what} -> {act.group_id:#x}")

    def _group_users(self, gid: int) -> list[str]:
        users = [str(e.match) for e in self.flows.values() if GroupAction(gid) in e.actions]
        users += [
            f"group {g.group_id:#x}"
            for g in self.groups.values()
            if any(GroupAction(gid) in b.actions for b in g.buckets)
        ]
        return users


@dataclass(frozen=True)
class Terminal:
    """Where one branch of a walk ended.

    ``kind``: ``out`` (left the fabric by ``at``), ``controller``, ``drop`` or
    ``loop``; for the last three ``at`` is where the packet entered the switch.
    ``trail`` lists every (switch, in_port) the branch entered, first to last.
    """

    kind: str
    at: PortRef
    trail: tuple[PortRef, ...]
    why: str = ""

    @property
    def switches(self) -> tuple[Dpid, ...]:
        return tuple(ref.dpid for ref in self.trail)


@dataclass(frozen=True)
class WalkResult:
    terminals: tuple[Terminal, ...]

    def of_kind(self, kind: str) -> list[Terminal]:
        return [t for t in self.terminals if t.kind == kind]

    @property
    def delivered(self) -> frozenset[PortRef]:
        return frozenset(t.at for t in self.of_kind("out"))

    @property
    def reached_controller(self) -> bool:
        return bool(self.of_kind("controller"))

    @property
    def dropped(self) -> bool:
        return bool(self.of_kind("drop"))

    @property
    def looped(self) -> bool:
        return bool(self.of_kind("loop"))

    @property
    def paths(self) -> set[tuple[Dpid, ...]]:
        """Switch sequences of the branches that left the fabric."""
        return {t.switches for t in self.of_kind("out")}

    def only_to(self, port: PortRef) -> bool:
        """Every branch left the fabric at ``port`` and nowhere else."""
        return bool(self.terminals) and all(
            t.kind == "out" and t.at == port for t in self.terminals
        )


def _replay_is_noop(sw: FakeSwitch, op: Op) -> bool:
    match op:
        case GroupAdd(group=grp):
            return sw.groups.get(grp.group_id) == grp
        case GroupDelete(group=grp):
            return grp.group_id not in sw.groups
        case MeterAdd(meter=meter):
            return sw.meters.get(meter.meter_id) == meter
        case MeterDelete(meter=meter):
            return meter.meter_id not in sw.meters
    return False


class FakeFabric:
    """Switch tables plus cabling. ``down`` holds ports whose link is dead."""

    def __init__(self, *, switches: Iterable[Dpid] = (), links: Iterable[LinkId] = ()) -> None:
        self.switches: dict[Dpid, FakeSwitch] = {d: FakeSwitch(d) for d in switches}
        self.peer: dict[PortRef, PortRef] = {lid.src: lid.dst for lid in links}
        self.down: set[PortRef] = set()

    @property
    def links(self) -> list[LinkId]:
        return sorted(LinkId(src, dst) for src, dst in self.peer.items())

    def switch(self, dpid: Dpid) -> FakeSwitch:
        return self.switches.setdefault(dpid, FakeSwitch(dpid))

    # ------------------------------------------------------------- programming
    def apply(self, program: Program, *, replay: bool = False) -> None:
        for phase in program.phases:
            self.apply_phase(phase, replay=replay)

    def apply_phase(self, phase: Phase, *, replay: bool = False) -> None:
        for dpid, ops in phase.ops.items():
            self.apply_ops(dpid, ops, replay=replay)

    def apply_ops(self, dpid: Dpid, ops: Iterable[Op], *, replay: bool = False) -> None:
        sw = self.switches.get(dpid)
        if sw is None:
            raise OpenFlowError(dpid, "NOT_CONNECTED", "no such switch")
        for op in ops:
            sw.apply(op, replay=replay)

    def mods(self) -> Counter[str]:
        """Operations applied so far, by type, over all switches (barriers included)."""
        total: Counter[str] = Counter()
        for sw in self.switches.values():
            total.update(sw.mods)
        return total

    def table_hash(self, dpid: Dpid) -> str:
        return self.switches[dpid].table_hash()

    def hashes(self) -> dict[Dpid, str]:
        return {d: sw.table_hash() for d, sw in sorted(self.switches.items())}

    # --------------------------------------------------------------- forwarding
    def walk(
        self,
        dpid: Dpid,
        in_port: int,
        packet: Mapping[str, int | str],
        *,
        live_select: bool = False,
    ) -> WalkResult:
        """Follow ``packet`` (OXM field names) entering ``dpid`` on ``in_port``.

        Every bucket of a SELECT group is a branch of its own (the hash could pick
        any); ``live_select`` skips buckets whose watch port is down, as Open
        vSwitch does. FAST_FAILOVER takes its first live bucket only.
        """
        out: list[Terminal] = []
        self._visit(PortRef(dpid, in_port), dict(packet), (), live_select, out)
        return WalkResult(tuple(out))

    def _visit(
        self,
        at: PortRef,
        packet: dict[str, int | str],
        trail: tuple[PortRef, ...],
        live_select: bool,
        out: list[Terminal],
    ) -> None:
        if any(ref.dpid == at.dpid for ref in trail):
            out.append(Terminal("loop", at, (*trail, at), "switch revisited"))
            return
        trail = (*trail, at)
        sw = self.switches.get(at.dpid)
        if sw is None:
            out.append(Terminal("drop", at, trail, "no such switch"))
            return
        entry = self._lookup(sw, {**packet, "in_port": at.port})
        if entry is None:
            out.append(Terminal("drop", at, trail, "no entry matched"))
            return
        if not entry.actions:
            out.append(Terminal("drop", at, trail, f"no actions in {entry.match}"))
            return
        for branch in self._expand(sw, entry.actions, live_select):
            if not branch:
                out.append(Terminal("drop", at, trail, "no live bucket"))
            for act in branch:
                if isinstance(act, ToController):
                    out.append(Terminal("controller", at, trail))
                elif isinstance(act, Output):
                    self._emit(PortRef(at.dpid, act.port), at, packet, trail, live_select, out)

    def _expand(
        self, sw: FakeSwitch, actions: tuple[Action, ...], live_select: bool
    ) -> list[list[Action]]:
        """Alternative action lists (one per SELECT bucket), groups resolved."""
        branches: list[list[Action]] = [[]]
        for act in actions:
            if not isinstance(act, GroupAction):
                branches = [[*b, act] for b in branches]
                continue
            grp = sw.groups[act.group_id]
            live = [b for b in grp.buckets if _live(b.watch_port, sw.dpid, self.down)]
            if grp.type is GroupType.SELECT:
                picked = live if live_select else grp.buckets
                choices = [list(b.actions) for b in picked] or [[]]
            elif grp.type is GroupType.FAST_FAILOVER:
                choices = [list(live[0].actions)] if live else [[]]
            else:  # ALL and INDIRECT: every bucket's actions, as copies
                choices = [[a for b in grp.buckets for a in b.actions]]
            branches = [[*b, *c] for b in branches for c in choices]
        return branches

    def _emit(
        self,
        port: PortRef,
        came_in: PortRef,
        packet: dict[str, int | str],
        trail: tuple[PortRef, ...],
        live_select: bool,
        out: list[Terminal],
    ) -> None:
        if port == came_in:
            # OpenFlow never sends a packet back out of its in_port via Output(n).
            out.append(Terminal("drop", came_in, trail, "output to in_port"))
        elif port in self.down:
            out.append(Terminal("drop", came_in, trail, f"port {port} is down"))
        elif port in self.peer:
            peer = self.peer[port]
            if peer in self.down:
                out.append(Terminal("drop", came_in, trail, f"port {peer} is down"))
            else:
                self._visit(peer, packet, trail, live_select, out)
        else:
            out.append(Terminal("out", port, trail))

    @staticmethod
    def _lookup(sw: FakeSwitch, packet: dict[str, int | str]) -> FlowEntry | None:
        hits = [
            e
            for e in sw.flows.values()
            if e.table_id == 0 and all(field_matches(v, packet.get(k)) for k, v in e.match.fields)
        ]
        if not hits:
            return None
        top = max(e.priority for e in hits)
        best = [e for e in hits if e.priority == top]
        if len(best) > 1:  # OpenFlow leaves this undefined: treat it as a bug
            raise AssertionError(f"switch {sw.dpid:#x}: overlapping entries at priority {top}")
        return best[0]
