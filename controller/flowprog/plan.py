"""Order table changes into phases so that no packet meets a half-built path.

Make-before-break: a flow's new entries on every switch except its ingress
go first (groups and meters before the flows that use them), the switches
confirm with barriers, then the ingress entries flip the path, the switches
confirm again, and only then are old entries and unused groups removed.

Output is data: :class:`Phase` lists per-switch operations; the shim sends a
phase's operations, a barrier to every switch in it, and starts the next
phase only when all barrier replies are in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from controller.fabric.model import Dpid
from controller.flowprog.entries import FlowEntry, GroupEntry, MeterEntry
from controller.flowprog.tables import SwitchChanges, SwitchTable, TableChanges

__all__ = [
    "FlowAdd",
    "FlowDelete",
    "GroupAdd",
    "GroupModify",
    "GroupDelete",
    "MeterAdd",
    "MeterModify",
    "MeterDelete",
    "Barrier",
    "Op",
    "Phase",
    "Program",
    "egress_order",
    "plan_changes",
    "reconcile",
]


@dataclass(frozen=True)
class FlowAdd:
    entry: FlowEntry  # OFPFC_ADD: replaces an entry with the same match and priority


@dataclass(frozen=True)
class FlowDelete:
    entry: FlowEntry  # OFPFC_DELETE_STRICT on its match and priority


@dataclass(frozen=True)
class GroupAdd:
    group: GroupEntry


@dataclass(frozen=True)
class GroupModify:
    group: GroupEntry


@dataclass(frozen=True)
class GroupDelete:
    group: GroupEntry


@dataclass(frozen=True)
class MeterAdd:
    meter: MeterEntry


@dataclass(frozen=True)
class MeterModify:
    meter: MeterEntry


@dataclass(frozen=True)
class MeterDelete:
    meter: MeterEntry


@dataclass(frozen=True)
class Barrier:
    """Within one switch: everything before is done before anything after starts."""


Op = (
    FlowAdd
    | FlowDelete
    | GroupAdd
    | GroupModify
    | GroupDelete
    | MeterAdd
    | MeterModify
    | MeterDelete
    | Barrier
)


@dataclass
class Phase:
    ops: dict[Dpid, list[Op]] = field(default_factory=dict)

    def add(self, dpid: Dpid, ops: list[Op]) -> None:
        ops = _trim_barriers(ops)
        if ops:
            self.ops.setdefault(dpid, []).extend(ops)

    def __bool__(self) -> bool:
        return bool(self.ops)


@dataclass
class Program:
    """What to send, phase by phase. ``reason`` labels it in logs and metrics."""

    phases: list[Phase] = field(default_factory=list)
    reason: str = ""
    created_at: float = 0.0  # when the decision was taken (for setup-latency metrics)
    # Reported back (``FlowPlacer.program_done``) once every phase is confirmed.
    done_key: tuple[str, int, int] | None = None

    def __bool__(self) -> bool:
        return any(self.phases)

    def op_count(self) -> int:
        return sum(
            1
            for phase in self.phases
            for ops in phase.ops.values()
            for op in ops
            if not isinstance(op, Barrier)
        )

    def extend(self, other: Program) -> None:
        self.phases.extend(p for p in other.phases if p)

    def switches(self) -> set[Dpid]:
        """The switches the program sends anything to."""
        return {dpid for phase in self.phases for dpid in phase.ops}

    def joined(self) -> dict[Dpid, list[Op]]:
        """Each switch's operations of every phase in order, a barrier between phases.

        On one switch this is the order phase by phase gives (a barrier orders a
        switch's messages) without waiting for each phase's confirmation; across
        switches it is not: only a program on one switch may be sent this way.
        """
        out: dict[Dpid, list[Op]] = {}
        for phase in self.phases:
            for dpid, ops in phase.ops.items():
                have = out.setdefault(dpid, [])
                if have:
                    have.append(_BARRIER)
                have.extend(ops)
        return out


_BARRIER = Barrier()  # no fields: one value serves every place a barrier goes


def _trim_barriers(ops: list[Op]) -> list[Op]:
    """Drop leading, trailing and repeated barriers."""
    out: list[Op] = []
    for op in ops:
        if isinstance(op, Barrier) and (not out or isinstance(out[-1], Barrier)):
            continue
        out.append(op)
    while out and isinstance(out[-1], Barrier):
        out.pop()
    return out


def _by_table(
    entries: list[FlowEntry], op: type[FlowAdd | FlowDelete], *, later_first: bool
) -> list[Op]:
    """Flow operations table by table, a barrier between tables.

    An entry can only continue into a later table, so adds fill later tables
    first and deletes empty earlier tables first: no entry ever leads into a
    table that does not yet (or no longer) hold what it needs.
    """
    tables = {e.table_id for e in entries}
    if len(tables) == 1:  # the common case: every entry in one table
        return [_BARRIER, *[op(e) for e in entries]]
    ops: list[Op] = []
    for table_id in sorted(tables, reverse=later_first):
        ops.append(_BARRIER)
        ops += [op(e) for e in entries if e.table_id == table_id]
    return ops


def _watched_last(group: GroupEntry) -> bool:
    """Sort key: groups that watch other groups come after the groups they watch
    (added after them, deleted before them)."""
    return group.watches_group


def _prepare(ch: SwitchChanges, flows: list[FlowEntry]) -> list[Op]:
    ops: list[Op] = [MeterAdd(m) for m in ch.meter_adds]
    ops += [MeterModify(m) for m in ch.meter_mods]
    ops += [GroupAdd(g) for g in sorted(ch.group_adds, key=_watched_last)]
    ops += [GroupModify(g) for g in ch.group_mods]
    ops += _by_table(flows, FlowAdd, later_first=True)
    return ops


def _cleanup(ch: SwitchChanges) -> list[Op]:
    ops: list[Op] = _by_table(ch.flow_deletes, FlowDelete, later_first=False)
    ops.append(_BARRIER)
    ops += [GroupDelete(g) for g in sorted(ch.group_deletes, key=_watched_last, reverse=True)]
    ops += [MeterDelete(m) for m in ch.meter_deletes]
    return ops


def egress_order(orders: Iterable[Sequence[Dpid]]) -> tuple[Dpid, ...]:
    """One ``egress_first`` order for several paths built together (a job's pairs, a
    round's moved flows): each switch ranked by its nearest place to an egress
    among them, so the build phase still goes downstream first."""
    rank: dict[Dpid, int] = {}
    for order in orders:
        for i, dpid in enumerate(order):
            rank[dpid] = min(rank.get(dpid, i), i)
    return tuple(sorted(rank, key=lambda d: (rank[d], d)))


def plan_changes(
    changes: TableChanges, *, reason: str = "", egress_first: Sequence[Dpid] = ()
) -> Program:
    """Make-before-break phases for ``changes``.

    ``egress_first`` orders the switches of the first phase (a moved flow's new
    path from egress back to ingress); other switches follow in dpid order.
    """
    if len(changes) == 1:  # one switch (a new flow's ingress): nothing to order
        ((dpid, ch),) = changes.items()
        if _flips_only(ch):  # a new flow's rules: one phase, no barriers
            return Program(
                phases=[Phase({dpid: [FlowAdd(e) for e in ch.flow_adds]})], reason=reason
            )
        order = [dpid]
    else:
        rank = {dpid: i for i, dpid in enumerate(egress_first)}
        order = sorted(changes, key=lambda d: (rank.get(d, len(rank)), d))
    build, flip, clean = Phase(), Phase(), Phase()
    for dpid in order:
        ch = changes[dpid]
        # A phase a switch has nothing for is skipped (it would only hold barriers).
        prepared = [e for e in ch.flow_adds if not e.ingress]
        if prepared or ch.group_adds or ch.group_mods or ch.meter_adds or ch.meter_mods:
            build.add(dpid, _prepare(ch, prepared))
        flips: list[Op] = [FlowAdd(e) for e in ch.flow_adds if e.ingress]
        if flips:
            flip.add(dpid, flips)
        if ch.flow_deletes or ch.group_deletes or ch.meter_deletes:
            clean.add(dpid, _cleanup(ch))
    return Program(phases=[p for p in (build, flip, clean) if p], reason=reason)


def _flips_only(ch: SwitchChanges) -> bool:
    """Whether ``ch`` only adds ingress entries (the flip phase alone, see above)."""
    return (
        bool(ch.flow_adds)
        and not (ch.flow_deletes or ch.group_adds or ch.group_mods or ch.group_deletes)
        and not (ch.meter_adds or ch.meter_mods or ch.meter_deletes)
        and all(e.ingress for e in ch.flow_adds)
    )


def reconcile(desired: SwitchTable, installed: SwitchTable) -> list[Op]:
    """Operations that turn what a switch reports (``installed``) into ``desired``.

    Entries that already match send nothing, so reconnecting a switch whose
    tables are right costs no flow-mods and interrupts no traffic.
    """
    ch = SwitchChanges()
    for mid, meter in desired.meters.items():
        have_m = installed.meters.get(mid)
        if have_m is None:
            ch.meter_adds.append(meter)
        elif have_m != meter:
            ch.meter_mods.append(meter)
    for gid, group in desired.groups.items():
        have_g = installed.groups.get(gid)
        if have_g is None:
            ch.group_adds.append(group)
        elif have_g != group:
            ch.group_mods.append(group)
    for key, entry in desired.flows.items():
        have_f = installed.flows.get(key)
        if have_f is None or not have_f.same_on_switch(entry):
            ch.flow_adds.append(entry)
    ch.flow_deletes = [e for k, e in installed.flows.items() if k not in desired.flows]
    ch.group_deletes = [g for gid, g in installed.groups.items() if gid not in desired.groups]
    ch.meter_deletes = [m for mid, m in installed.meters.items() if mid not in desired.meters]
    return _trim_barriers([*_prepare(ch, ch.flow_adds), _BARRIER, *_cleanup(ch)])
