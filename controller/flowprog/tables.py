"""Desired switch tables, assembled from independent owners, and their changes.

Each owner (the per-switch forwarding state, or one placed flow) declares the
flow entries, groups and meters it needs on each switch. :class:`DesiredTables`
merges them into one table per switch, reference-counts shared groups, and
reports exactly what changed when an owner's needs change, so a new flow costs
work proportional to its own path, not to the whole fabric.

It is the single truth of what every switch should hold. It does not know
whether a switch is connected or what it holds now: reconciling with a
switch's actual tables is :func:`controller.flowprog.plan.reconcile`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, count
from operator import attrgetter, is_not, not_

from controller.fabric.model import Dpid
from controller.flowprog.entries import EntryKey, FlowEntry, GroupEntry, MeterEntry

__all__ = ["SwitchTable", "SwitchChanges", "TableChanges", "OwnerNeeds", "DesiredTables"]


@dataclass
class SwitchTable:
    flows: dict[EntryKey, FlowEntry] = field(default_factory=dict)
    groups: dict[int, GroupEntry] = field(default_factory=dict)
    meters: dict[int, MeterEntry] = field(default_factory=dict)


@dataclass
class SwitchChanges:
    """What must change on one switch. ``flow_adds`` holds new *and* replaced entries
    (an OpenFlow ADD with the same match and priority replaces atomically)."""

    flow_adds: list[FlowEntry] = field(default_factory=list)
    flow_deletes: list[FlowEntry] = field(default_factory=list)
    group_adds: list[GroupEntry] = field(default_factory=list)
    group_mods: list[GroupEntry] = field(default_factory=list)
    group_deletes: list[GroupEntry] = field(default_factory=list)
    meter_adds: list[MeterEntry] = field(default_factory=list)
    meter_mods: list[MeterEntry] = field(default_factory=list)
    meter_deletes: list[MeterEntry] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(
            (
                self.flow_adds,
                self.flow_deletes,
                self.group_adds,
                self.group_mods,
                self.group_deletes,
                self.meter_adds,
                self.meter_mods,
                self.meter_deletes,
            )
        )


TableChanges = dict[Dpid, SwitchChanges]


@dataclass(frozen=True)
class OwnerNeeds:
    """Everything one owner wants installed, per switch."""

    flows: Mapping[Dpid, tuple[FlowEntry, ...]] = field(default_factory=dict)
    groups: Mapping[Dpid, tuple[GroupEntry, ...]] = field(default_factory=dict)
    meters: Mapping[Dpid, tuple[MeterEntry, ...]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        flows: Mapping[Dpid, Iterable[FlowEntry]] | None = None,
        groups: Mapping[Dpid, Iterable[GroupEntry]] | None = None,
        meters: Mapping[Dpid, Iterable[MeterEntry]] | None = None,
    ) -> OwnerNeeds:
        return cls(
            flows={d: tuple(v) for d, v in (flows or {}).items()},
            groups={d: tuple(v) for d, v in (groups or {}).items()},
            meters={d: tuple(v) for d, v in (meters or {}).items()},
        )


_NOTHING = OwnerNeeds()  # what an owner not seen before needs (read-only)


class ConflictError(RuntimeError):
    """Two owners want different contents under one key (a programming bug)."""


class DesiredTables:
    """The merged desired state of every switch."""

    def __init__(self) -> None:
        self._owners: dict[Hashable, OwnerNeeds] = {}
        self._tables: dict[Dpid, SwitchTable] = defaultdict(SwitchTable)
        # Who holds each entry, per switch (one small map per switch, keyed like its table).
        self._flow_owner: dict[Dpid, dict[EntryKey, Hashable]] = defaultdict(dict)
        self._group_refs: dict[tuple[Dpid, int], int] = defaultdict(int)
        self._meter_refs: dict[tuple[Dpid, int], int] = defaultdict(int)

    def table(self, dpid: Dpid) -> SwitchTable:
        return self._tables[dpid]

    def owners(self) -> list[Hashable]:
        return list(self._owners)

    def set_owner(self, owner: Hashable, needs: OwnerNeeds) -> TableChanges:
        """Replace what ``owner`` needs and return the resulting changes."""
        old = self._owners.get(owner, _NOTHING)
        if old is needs:
            return {}  # the very needs it has (a switch's spread set, unchanged)
        flows = _flow_delta(old, needs)
        self._check_conflicts(owner, needs, flows)
        changes: TableChanges = defaultdict(SwitchChanges)
        # Shared objects first: groups and meters are referenced by flows.
        self._swap_shared(old.groups, needs.groups, self._group_refs, "groups", changes)
        self._swap_shared(old.meters, needs.meters, self._meter_refs, "meters", changes)
        self._swap_flows(owner, flows, changes)
        if any(needs.flows.values()) or any(needs.groups.values()) or any(needs.meters.values()):
            self._owners[owner] = needs
        else:
            self._owners.pop(owner, None)
        return dict(changes)  # a switch's changes are made only to append to them

    def drop_owner(self, owner: Hashable) -> TableChanges:
        return self.set_owner(owner, OwnerNeeds())

    def add_plain_owner(self, owner: Hashable, needs: OwnerNeeds) -> FlowEntry | None:
        """The common new flow, added as :meth:`set_owner` would add it: a new
        ``owner`` needing one entry on one switch, whose key no owner holds, and
        at most one group, which that switch holds already with the same content.
        Returns the entry (the one change), or None when ``needs`` is not that case
        (nothing is touched: :meth:`set_owner` takes it)."""
        if owner in self._owners or len(needs.flows) != 1 or needs.meters:
            return None
        ((dpid, entries),) = needs.flows.items()
        groups = needs.groups.get(dpid, ())
        if len(entries) != 1 or len(groups) > 1 or len(needs.groups) > (1 if groups else 0):
            return None
        (entry,) = entries
        key = entry.key
        owners = self._flow_owner[dpid]
        if key in owners:
            return None  # a conflict, or an owner's key: set_owner says which
        table = self._tables[dpid]
        if groups:
            (grp,) = groups
            have = table.groups.get(grp.group_id)
            if have is None or (have is not grp and have != grp):
                return None  # a group to add or a clash: set_owner's work
            self._group_refs[(dpid, grp.group_id)] += 1
            table.groups[grp.group_id] = grp
        table.flows[key] = entry
        owners[key] = owner
        self._owners[owner] = needs
        return entry

    # ------------------------------------------------------------------ helpers
    def _check_conflicts(self, owner: Hashable, needs: OwnerNeeds, flows: _FlowDelta) -> None:
        for dpid, entries, _ in flows:
            owners = self._flow_owner[dpid]
            for entry in entries:
                holder = owners.get(entry.key)
                if holder is not None and holder != owner:
                    raise ConflictError(f"{owner!r} and {holder!r} both want {entry.key} on {dpid}")
        for dpid, groups in needs.groups.items():
            for grp in groups:
                have = self._tables[dpid].groups.get(grp.group_id)
                if (
                    have is not None
                    and have is not grp  # shared groups are mostly one object
                    and have != grp
                    and self._group_refs[(dpid, grp.group_id)]
                    > (1 if self._owned_group(owner, dpid, grp.group_id) else 0)
                ):
                    raise ConflictError(f"group {grp.group_id:#x} on {dpid} has two contents")

    def _owned_group(self, owner: Hashable, dpid: Dpid, gid: int) -> bool:
        old = self._owners.get(owner)
        return old is not None and any(g.group_id == gid for g in old.groups.get(dpid, ()))

    def _swap_flows(self, owner: Hashable, flows: _FlowDelta, changes: TableChanges) -> None:
        for dpid, new, old in flows:
            held, owners = self._tables[dpid].flows, self._flow_owner[dpid]
            before = {e.key: e for e in old}
            after = {e.key: e for e in new}
            for key, entry in after.items():
                prev = before.get(key)
                if prev is entry:
                    continue  # the very entry it had
                if prev is None or not prev.same_on_switch(entry):
                    changes[dpid].flow_adds.append(entry)
                held[key] = entry
                owners[key] = owner
            for key, entry in before.items():
                if key not in after:
                    changes[dpid].flow_deletes.append(entry)
                    del held[key]
                    del owners[key]

    def _swap_shared(
        self,
        old: Mapping[Dpid, tuple[GroupEntry, ...]] | Mapping[Dpid, tuple[MeterEntry, ...]],
        new: Mapping[Dpid, tuple[GroupEntry, ...]] | Mapping[Dpid, tuple[MeterEntry, ...]],
        refs: dict[tuple[Dpid, int], int],
        kind: str,
        changes: TableChanges,
    ) -> None:
        if not old and not new:
            return
        # A new owner (a new flow) has nothing before: its switches are the new ones.
        for dpid in old.keys() | new.keys() if old else new.keys():
            if old and old.get(dpid) is new.get(dpid):
                continue  # the very same objects: no reference and no content changes
            store: dict[int, GroupEntry | MeterEntry] = getattr(self._tables[dpid], kind)
            key = _GROUP_ID if kind == "groups" else _METER_ID
            had, have_now = old.get(dpid, ()) if old else (), new.get(dpid, ())
            before = dict(zip(map(key, had), had, strict=True))
            after = dict(zip(map(key, have_now), have_now, strict=True))
            for oid, obj in after.items():
                if oid not in before:
                    refs[(dpid, oid)] += 1
                have = store.get(oid)
                if have is None:
                    _adds(changes[dpid], kind).append(obj)
                elif have is not obj and have != obj:
                    _mods(changes[dpid], kind).append(obj)
                store[oid] = obj
            for oid, obj in before.items():
                if oid in after:
                    continue
                refs[(dpid, oid)] -= 1
                if refs[(dpid, oid)] <= 0:
                    del refs[(dpid, oid)]
                    del store[oid]
                    _deletes(changes[dpid], kind).append(obj)


# Per switch: the entries an owner needs that it did not have as the very same
# object, and the entries it had that it does not need as the very same object.
_FlowDelta = list[tuple[Dpid, Sequence[FlowEntry], Sequence[FlowEntry]]]
_SMALL = 16  # entries on a switch below which a plain comparison is cheaper


def _flow_delta(old: OwnerNeeds, new: OwnerNeeds) -> _FlowDelta:
    """What changed between an owner's old and new flow entries, per switch.

    A new owner (a new flow) has nothing before: its switches are the new ones.
    A large owner (a switch's default forwarding) recomputed after a topology
    change gets back most of its entries as the same objects (they are kept per
    route): only the others are compared by key, so a lost link costs work where
    routes changed, not for every entry of every switch.
    """
    if not old.flows:
        return [(dpid, entries, ()) for dpid, entries in new.flows.items()]
    delta: _FlowDelta = []
    for dpid in new.flows.keys() | old.flows.keys():
        after, before = new.flows.get(dpid, ()), old.flows.get(dpid, ())
        if after is before:
            continue
        if len(after) < _SMALL or len(before) < _SMALL:
            delta.append((dpid, after, before))
            continue
        after, before = _changed_middles(after, before)
        kept, had = set(map(id, after)), set(map(id, before))
        # In order, without a Python step per entry (a lost link changes entries
        # all over a leaf's table).
        added = list(compress(after, map(not_, map(had.__contains__, map(id, after)))))
        dropped = list(compress(before, map(not_, map(kept.__contains__, map(id, before)))))
        if added or dropped:
            delta.append((dpid, added, dropped))
    return delta


def _changed_middles(
    after: tuple[FlowEntry, ...], before: tuple[FlowEntry, ...]
) -> tuple[tuple[FlowEntry, ...], tuple[FlowEntry, ...]]:
    """``after`` and ``before`` without their longest common head and tail. A switch's
    forwarding keeps its entries in the order of their destinations: a new host
    changes one entry of ~1,600 on each switch at 64 x 512, a lost spine those
    towards one leaf. An object is in a switch's entries once (one per key), so what
    is cut is exactly what is kept (or, rarely, an entry made again equal to the one
    it replaces: nothing to change for it either)."""
    n = min(len(after), len(before))
    head = _same_head(after, before, n)
    tail = _same_head(after[::-1], before[::-1], n - head)
    return after[head : len(after) - tail], before[head : len(before) - tail]


_BLOCK = 64  # entries compared at once by the tuples' own comparison (in C)


def _same_head(a: Sequence[FlowEntry], b: Sequence[FlowEntry], n: int) -> int:
    """How many of the first ``n`` entries of ``a`` and ``b`` are the same: a block at a
    time while blocks are equal (identical entries compare without a call), then the
    first differing block entry by entry, by identity."""
    i = 0
    while i < n and a[i : (j := min(i + _BLOCK, n))] == b[i:j]:
        i = j
    return next(compress(count(i), map(is_not, a[i:n], b[i:n])), n)


_GROUP_ID, _METER_ID = attrgetter("group_id"), attrgetter("meter_id")


def shared_id(obj: GroupEntry | MeterEntry) -> int:
    """The id a group or meter is known by on its switch."""
    return obj.group_id if isinstance(obj, GroupEntry) else obj.meter_id


def _adds(ch: SwitchChanges, kind: str) -> list:  # type: ignore[type-arg]
    return ch.group_adds if kind == "groups" else ch.meter_adds


def _mods(ch: SwitchChanges, kind: str) -> list:  # type: ignore[type-arg]
    return ch.group_mods if kind == "groups" else ch.meter_mods


def _deletes(ch: SwitchChanges, kind: str) -> list:  # type: ignore[type-arg]
    return ch.group_deletes if kind == "groups" else ch.meter_deletes
