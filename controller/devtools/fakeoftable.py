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
from dataclasses import dataclass, field

from controller.devtools.fakegroups import GroupUsers, group_users
from controller.devtools.fakeofcheck import OpenFlowError, check_flow, check_group, held, number
from controller.fabric.model import Dpid, LinkId, PortRef
from controller.flowprog.entries import (
    IN_PORT,
    OFPVID_PRESENT,
    Action,
    Bucket,
    EntryKey,
    FlowEntry,
    GroupAction,
    GroupEntry,
    GroupType,
    MatchValue,
    MeterEntry,
    Output,
    PopVlan,
    PushVlan,
    SetField,
    ToController,
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
    "field_matches",
]

Packet = dict[str, int | str]
Headers = tuple[tuple[str, int | str], ...]


def field_matches(want: MatchValue, have: int | str | None) -> bool:
    """Whether a packet's field value ``have`` satisfies the match value ``want``."""
    if have is None:
        return False
    if isinstance(want, tuple):
        value, mask = number(want[0]), number(want[1])
        return number(have) & mask == value & mask
    if isinstance(want, str) and "/" in want:  # "10.0.0.0/24" is accepted by Ryu too
        return ipaddress.IPv4Address(number(have)) in ipaddress.IPv4Network(want)
    return number(have) == number(want)


def _live(bucket_watch: int | None, dpid: Dpid, down: set[PortRef]) -> bool:
    return bucket_watch is None or PortRef(dpid, bucket_watch) not in down


TableCopy = tuple[dict[EntryKey, FlowEntry], dict[int, GroupEntry], dict[int, MeterEntry]]


@dataclass
class FakeSwitch:
    """One switch's tables. They survive a disconnect (fail-secure mode)."""

    dpid: Dpid
    flows: dict[EntryKey, FlowEntry] = field(default_factory=dict)
    groups: dict[int, GroupEntry] = field(default_factory=dict)
    meters: dict[int, MeterEntry] = field(default_factory=dict)
    connected: bool = True
    mods: Counter[str] = field(default_factory=Counter)  # operations applied, by type
    users: GroupUsers | None = field(default=None, repr=False, compare=False)  # in a batch
    batch: bool = field(default=False, repr=False, compare=False)

    def reported(self) -> SwitchTable:
        """What the switch answers to flow/group/meter stats requests."""
        return SwitchTable(
            flows=dict(self.flows), groups=dict(self.groups), meters=dict(self.meters)
        )

    def contents(self) -> TableCopy:
        """A copy of the tables to compare with a later one (cheaper than a hash)."""
        return dict(self.flows), dict(self.groups), dict(self.meters)

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
                if self.users is not None:
                    self.users.flow(self.flows.get(entry.key), entry)
                # `ingress` is controller metadata; a switch never reports it back.
                self.flows[entry.key] = held(entry) if entry.ingress else entry
            case FlowDelete(entry=entry):
                if (gone := self.flows.pop(entry.key, None)) is None:
                    self.mods["FlowDeleteMissing"] += 1
                elif self.users is not None:
                    self.users.flow(gone, None)
            case GroupAdd(group=grp):
                if grp.group_id in self.groups:
                    raise OpenFlowError(self.dpid, "GROUP_EXISTS", f"group {grp.group_id:#x}")
                self._check_group(grp)
                self._set_group(grp)
            case GroupModify(group=grp):
                if grp.group_id not in self.groups:
                    raise OpenFlowError(self.dpid, "UNKNOWN_GROUP", f"modify {grp.group_id:#x}")
                self._check_group(grp)
                self._set_group(grp)
            case GroupDelete(group=grp):
                # OpenFlow tolerates deleting a missing group; a missing one here
                # means the controller's idea of the switch is wrong, so fail.
                if grp.group_id not in self.groups:
                    raise OpenFlowError(self.dpid, "UNKNOWN_GROUP", f"delete {grp.group_id:#x}")
                if self.batch and self.users is None:
                    self.users = GroupUsers(self.flows.values(), self.groups.values())
                if self.users is None or self.users.used(grp.group_id):
                    users = group_users(self.flows.values(), self.groups.values(), grp.group_id)
                    if users:
                        raise OpenFlowError(
                            self.dpid, "GROUP_IN_USE", f"{grp.group_id:#x} used by {users[0]}"
                        )
                if self.users is not None:
                    self.users.group(self.groups[grp.group_id], None)
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
        check_flow(self.dpid, entry, groups=self.groups, meters=self.meters)

    def _check_group(self, grp: GroupEntry) -> None:
        check_group(self.dpid, grp, groups=self.groups)

    def _set_group(self, grp: GroupEntry) -> None:
        if self.users is not None:
            self.users.group(self.groups.get(grp.group_id), grp)
        self.groups[grp.group_id] = grp


@dataclass(frozen=True)
class Terminal:
    """Where one branch of a walk ended.

    ``kind``: ``out`` (left the fabric by ``at``), ``controller``, ``drop`` or
    ``loop``; for the last three ``at`` is where the packet entered the switch.
    ``trail`` lists every (switch, in_port) the branch entered, first to last;
    ``packet`` is the packet's headers when it ended (tags pushed included).
    """

    kind: str
    at: PortRef
    trail: tuple[PortRef, ...]
    why: str = ""
    packet: Headers = ()

    @property
    def switches(self) -> tuple[Dpid, ...]:
        return tuple(ref.dpid for ref in self.trail)

    @property
    def tagged(self) -> bool:
        """The packet carries a VLAN tag."""
        return "vlan_vid" in dict(self.packet)

    @property
    def bounces(self) -> int:
        """How often the packet was sent back to the switch it had just come from."""
        hops = self.switches
        return sum(1 for i in range(1, len(hops) - 1) if hops[i - 1] == hops[i + 1])


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
    def max_bounces(self) -> int:
        return max((t.bounces for t in self.terminals), default=0)

    @property
    def paths(self) -> set[tuple[Dpid, ...]]:
        """Switch sequences of the branches that left the fabric."""
        return {t.switches for t in self.of_kind("out")}

    def only_to(self, port: PortRef) -> bool:
        """Every branch left the fabric at ``port``, untagged, and nowhere else."""
        return bool(self.terminals) and all(
            t.kind == "out" and t.at == port and not t.tagged for t in self.terminals
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
        sw.batch = True  # group users counted from the first group delete on
        try:
            for op in ops:
                sw.apply(op, replay=replay)
        finally:
            sw.batch, sw.users = False, None

    def mods(self) -> Counter[str]:
        """Operations applied so far, by type, over all switches (barriers included)."""
        total: Counter[str] = Counter()
        for sw in self.switches.values():
            total.update(sw.mods)
        return total

    def table_hash(self, dpid: Dpid) -> str:
        return self.switches[dpid].table_hash()

    def contents(self) -> dict[Dpid, TableCopy]:
        return {d: sw.contents() for d, sw in self.switches.items()}

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
        vSwitch does. FAST_FAILOVER takes its first live bucket only. Actions
        run in order on the packet (VLAN push, set, pop); a group's buckets work
        on copies; ``goto`` continues in a later table with the metadata written.
        A branch that enters a switch it entered before with the same headers is
        a loop (a packet sent back tagged differs from the one that left).
        """
        out: list[Terminal] = []
        walk = _Walk(self, live_select, out)
        walk.enter(PortRef(dpid, in_port), dict(packet), (), frozenset())
        return WalkResult(tuple(out))


def _headers(packet: Packet) -> Headers:
    return tuple(sorted(packet.items()))


@dataclass
class _Walk:
    """One packet walk through a fabric's tables (every branch of it)."""

    fabric: FakeFabric
    live_select: bool
    out: list[Terminal]

    def enter(
        self,
        at: PortRef,
        packet: Packet,
        trail: tuple[PortRef, ...],
        seen: frozenset[tuple[Dpid, Headers]],
    ) -> None:
        state = (at.dpid, _headers(packet))
        if state in seen:
            self.out.append(Terminal("loop", at, (*trail, at), "switch revisited", state[1]))
            return
        trail, seen = (*trail, at), seen | {state}
        sw = self.fabric.switches.get(at.dpid)
        if sw is None:
            self.out.append(Terminal("drop", at, trail, "no such switch"))
            return
        self.table(sw, 0, packet, 0, _Here(at, trail, seen))

    def table(self, sw: FakeSwitch, table_id: int, packet: Packet, meta: int, here: _Here) -> None:
        entry = _lookup(sw, table_id, {**packet, "in_port": here.at.port, "metadata": meta})
        if entry is None:
            self.drop(here, f"no entry matched in table {table_id}")
            return
        apply, write, goto = split_instructions(entry.actions)
        if not apply and goto is None:
            self.drop(here, f"no actions in {entry.match}")
            return
        packet = self.run(sw, apply, dict(packet), here)
        if goto is not None:
            if write is not None:
                meta = (meta & ~write.mask) | (write.value & write.mask)
            self.table(sw, goto.table_id, packet, meta, here)

    def run(self, sw: FakeSwitch, actions: Iterable[Action], packet: Packet, here: _Here) -> Packet:
        """Apply ``actions`` in order to ``packet``; returns it as they left it."""
        for act in actions:
            match act:
                case Output(port=port):
                    self.emit(PortRef(sw.dpid, port), dict(packet), here)
                case ToController():
                    self.out.append(Terminal("controller", here.at, here.trail))
                case PushVlan():
                    packet["vlan_vid"] = OFPVID_PRESENT  # VID 0 until set
                case PopVlan():
                    del packet["vlan_vid"]
                case SetField(field=name, value=value):
                    packet[name] = value
                case GroupAction(group_id=gid):
                    chosen = self.buckets(sw, gid)
                    if not chosen:
                        self.drop(here, "no live bucket")
                    for bucket_actions in chosen:
                        self.run(sw, bucket_actions, dict(packet), here)
        return packet

    def buckets(self, sw: FakeSwitch, gid: int) -> list[tuple[Action, ...]]:
        """The action lists a group runs (alternatives for SELECT, all for ALL)."""
        grp = sw.groups[gid]
        live = [b for b in grp.buckets if self._bucket_live(sw, b)]
        if grp.type is GroupType.SELECT:
            return [b.actions for b in (live if self.live_select else grp.buckets)]
        if grp.type is GroupType.FAST_FAILOVER:
            return [live[0].actions] if live else []
        return [b.actions for b in grp.buckets]  # ALL and INDIRECT

    def _bucket_live(self, sw: FakeSwitch, bucket: Bucket) -> bool:
        if not _live(bucket.watch_port, sw.dpid, self.fabric.down):
            return False
        if bucket.watch_group is None:
            return True
        watched = sw.groups.get(bucket.watch_group)
        return watched is not None and any(self._bucket_live(sw, b) for b in watched.buckets)

    def emit(self, port: PortRef, packet: Packet, here: _Here) -> None:
        fabric, came_in = self.fabric, here.at
        if port.port == IN_PORT:
            port = came_in  # the one way to send a packet back where it came from
        elif port == came_in:
            # OpenFlow never sends a packet back out of its in_port via Output(n).
            self.drop(here, "output to in_port")
            return
        if port in fabric.down:
            self.drop(here, f"port {port} is down")
        elif port in fabric.peer:
            peer = fabric.peer[port]
            if peer in fabric.down:
                self.drop(here, f"port {peer} is down")
            else:
                self.enter(peer, packet, here.trail, here.seen)
        else:
            self.out.append(Terminal("out", port, here.trail, packet=_headers(packet)))

    def drop(self, here: _Here, why: str) -> None:
        self.out.append(Terminal("drop", here.at, here.trail, why))


@dataclass(frozen=True)
class _Here:
    """Where a branch is: the port it entered by, its trail, the states it has been in."""

    at: PortRef
    trail: tuple[PortRef, ...]
    seen: frozenset[tuple[Dpid, Headers]]


def _lookup(sw: FakeSwitch, table_id: int, packet: Packet) -> FlowEntry | None:
    # An untagged packet's vlan_vid is OFPVID_NONE (0) for matching.
    fields = {"vlan_vid": 0, **packet}
    hits = [
        e
        for e in sw.flows.values()
        if e.table_id == table_id
        and all(field_matches(v, fields.get(k)) for k, v in e.match.fields)
    ]
    if not hits:
        return None
    top = max(e.priority for e in hits)
    best = [e for e in hits if e.priority == top]
    if len(best) > 1:  # OpenFlow leaves this undefined: treat it as a bug
        raise AssertionError(f"switch {sw.dpid:#x}: overlapping entries at priority {top}")
    return best[0]
