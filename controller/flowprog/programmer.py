"""Keep every switch's tables equal to the desired state, sending only differences.

The programmer tracks two things per switch: what it *should* hold (the
merged :class:`DesiredTables`) and what we believe it *does* hold
(``installed``: read from the switch when it connects, then updated as we
program it). Every change is the difference between the two, so re-applying
the same state sends nothing.

Right after a switch connects (``warmup_s``), what it already holds is
protected: nothing it reported is deleted or rewritten, only missing entries
are added. A restarted controller has not yet re-discovered the links, and
rewriting routes from a half-known topology would churn (or interrupt) traffic
that was flowing. When the warm-up ends, one full reconcile brings the switch
to the desired state.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from controller.fabric.model import Dpid
from controller.flowprog.entries import Action, EntryKey, GroupEntry, MeterEntry
from controller.flowprog.plan import FlowAdd, Op, Phase, Program, plan_changes, reconcile
from controller.flowprog.tables import (
    DesiredTables,
    OwnerNeeds,
    SwitchChanges,
    SwitchTable,
    TableChanges,
    shared_id,
)

__all__ = ["Programmer"]


class Programmer:
    def __init__(self, *, warmup_s: float = 4.0) -> None:
        self.desired = DesiredTables()
        self.installed: dict[Dpid, SwitchTable] = {}
        self._warm_until: dict[Dpid, float] = {}
        self._protected: dict[Dpid, _Protected] = {}
        self.warmup_s = warmup_s

    # ------------------------------------------------------------- switches
    def switch_synced(
        self, dpid: Dpid, reported: SwitchTable, *, now: float, warm: bool = True
    ) -> list[Op]:
        """A switch reported its tables: the operations that fix them.

        ``warm``: keep what we cannot explain yet (a fresh connection); else delete it.
        """
        self._warm_until[dpid] = now + self.warmup_s if warm else 0.0
        desired = self.desired.table(dpid)
        if warm:
            kept = _overlay(desired, reported)
            self._protected[dpid] = _Protected(
                flows=set(reported.flows), groups=set(reported.groups), meters=set(reported.meters)
            )
        else:
            kept = _copy(desired)
            self._protected.pop(dpid, None)
        ops = reconcile(kept, reported)
        self.installed[dpid] = _copy(kept)
        return ops

    def switch_lost(self, dpid: Dpid) -> None:
        self.installed.pop(dpid, None)
        self._warm_until.pop(dpid, None)
        self._protected.pop(dpid, None)

    def is_synced(self, dpid: Dpid) -> bool:
        return dpid in self.installed

    def warming(self, dpid: Dpid, now: float) -> bool:
        return now < self._warm_until.get(dpid, 0.0)

    def end_warmups(self, *, now: float) -> Program:
        """Reconcile switches whose warm-up just ended (deleting what is stale)."""
        program = Program(reason="warm-up over")
        for dpid, until in sorted(self._warm_until.items()):
            if until == 0.0 or now < until:
                continue
            self._warm_until[dpid] = 0.0
            self._protected.pop(dpid, None)
            ops = reconcile(self.desired.table(dpid), self.installed[dpid])
            self.installed[dpid] = _copy(self.desired.table(dpid))
            if ops:
                phase = Phase()
                phase.add(dpid, ops)
                program.phases.append(phase)
        return program

    def takes(self, key: EntryKey) -> Callable[[Dpid, Action], bool]:
        """``takes(dpid, action)``: whether the entry at ``key`` on ``dpid``, desired and
        installed alike, does just ``action``: a higher-priority rule doing that with
        some of the entry's packets would add nothing there."""

        def takes(dpid: Dpid, action: Action) -> bool:
            want = self.desired.table(dpid).flows.get(key)
            if want is None or want.actions != (action,):
                return False
            have = self.installed.get(dpid)
            got = None if have is None else have.flows.get(key)
            # Installed usually holds the very entry desired does: no field compare.
            return got is want or (got is not None and got.actions == want.actions)

        return takes

    # --------------------------------------------------------------- owners
    def set_owner(
        self,
        owner: Hashable,
        needs: OwnerNeeds,
        *,
        now: float,
        reason: str = "",
        egress_first: Sequence[Dpid] = (),
    ) -> Program:
        """Declare what ``owner`` needs; returns the make-before-break program."""
        plain = self._plain_new(owner, needs, now=now, reason=reason)
        if plain is not None:
            return plain
        return self.set_owners({owner: needs}, now=now, reason=reason, egress_first=egress_first)

    def _plain_new(
        self, owner: Hashable, needs: OwnerNeeds, *, now: float, reason: str
    ) -> Program | None:
        """A new flow's one ingress entry on a synced switch that holds its group
        already (:meth:`DesiredTables.add_plain_owner`), under a key the switch did
        not report at connect if it is still warming up: the program the general
        path makes of it (one phase, the one flow-mod), in a fraction of its steps.
        None when that is not the case."""
        if len(needs.flows) != 1:
            return None
        ((dpid, entries),) = needs.flows.items()
        if len(entries) != 1 or not entries[0].ingress:
            return None
        have = self.installed.get(dpid)
        if have is None:
            return None
        if self.warming(dpid, now):
            keep = self._protected.get(dpid)
            if keep is not None and entries[0].key in keep.flows:
                return None  # the switch reported it: left alone until the warm-up ends
        entry = self.desired.add_plain_owner(owner, needs)
        if entry is None:
            return None
        key = entry.key
        cur = have.flows.get(key)
        if cur is not None and cur.same_on_switch(entry):
            return Program(reason=reason)  # the switch holds it (as _against_installed)
        have.flows[key] = entry
        return Program(phases=[Phase({dpid: [FlowAdd(entry)]})], reason=reason)

    def set_owners(
        self,
        updates: Mapping[Hashable, OwnerNeeds],
        *,
        now: float,
        reason: str = "",
        egress_first: Sequence[Dpid] = (),
    ) -> Program:
        """Several owners at once, programmed as one make-before-break program."""
        candidates: TableChanges = {}
        if len(updates) == 1:  # one owner (a flow): its changes as they come
            ((owner, needs),) = updates.items()
            candidates = self.desired.set_owner(owner, needs)
        else:
            for owner, needs in updates.items():
                for dpid, ch in self.desired.set_owner(owner, needs).items():
                    _absorb(candidates.setdefault(dpid, SwitchChanges()), ch)
        return plan_changes(
            self._against_installed(candidates, now), reason=reason, egress_first=egress_first
        )

    def drop_owner(self, owner: Hashable, *, now: float, reason: str = "") -> Program:
        return self.set_owner(owner, OwnerNeeds(), now=now, reason=reason)

    def _against_installed(self, candidates: TableChanges, now: float) -> TableChanges:
        """Turn desired-state changes into switch changes for synced switches."""
        out: TableChanges = {}
        for dpid, cand in candidates.items():
            have = self.installed.get(dpid)
            if have is None:
                continue  # not connected: reconciled when it (re)connects
            want = self.desired.table(dpid)
            # During a warm-up only what the switch reported is protected; what
            # this controller installed itself since is changed freely.
            keep = self._protected.get(dpid) if self.warming(dpid, now) else None
            ch = SwitchChanges()
            held = have.flows
            for entry in cand.flow_adds:
                key = entry.key
                cur = held.get(key)
                if cur is not None and keep is not None and key in keep.flows:
                    continue  # reported by the switch: rewritten when the warm-up ends
                if cur is None or not cur.same_on_switch(entry):
                    ch.flow_adds.append(entry)
                    held[key] = entry
            for entry in cand.flow_deletes:
                kept = keep is not None and entry.key in keep.flows
                if entry.key not in want.flows and entry.key in have.flows and not kept:
                    ch.flow_deletes.append(have.flows.pop(entry.key))
            if cand.group_adds or cand.group_mods or cand.group_deletes:
                _shared(
                    cand.group_adds + cand.group_mods,
                    cand.group_deletes,
                    have=have.groups,
                    want=want.groups,
                    keep=keep.groups if keep else None,
                    out=(ch.group_adds, ch.group_mods, ch.group_deletes),
                )
            if cand.meter_adds or cand.meter_mods or cand.meter_deletes:
                _shared(
                    cand.meter_adds + cand.meter_mods,
                    cand.meter_deletes,
                    have=have.meters,
                    want=want.meters,
                    keep=keep.meters if keep else None,
                    out=(ch.meter_adds, ch.meter_mods, ch.meter_deletes),
                )
            if ch:
                out[dpid] = ch
        return out


Shared = TypeVar("Shared", GroupEntry, MeterEntry)


def _shared(
    upserts: list[Shared],
    deletes: list[Shared],
    *,
    have: dict[int, Shared],
    want: dict[int, Shared],
    keep: set[int] | None,
    out: tuple[list[Shared], list[Shared], list[Shared]],
) -> None:
    """Groups or meters (keyed by id): what to add, modify and delete on a switch."""
    adds, mods, dels = out
    for obj in upserts:
        oid = shared_id(obj)
        cur = have.get(oid)
        if cur is not None and keep is not None and oid in keep:
            continue  # reported by the switch: rewritten when the warm-up ends
        if cur is None:
            adds.append(obj)
        elif cur is not obj and cur != obj:
            mods.append(obj)
        have[oid] = obj
    for obj in deletes:
        oid = shared_id(obj)
        if oid not in want and oid in have and not (keep is not None and oid in keep):
            dels.append(have.pop(oid))


def _absorb(into: SwitchChanges, ch: SwitchChanges) -> None:
    for name in vars(ch):
        getattr(into, name).extend(getattr(ch, name))


def _copy(table: SwitchTable) -> SwitchTable:
    return SwitchTable(
        flows=dict(table.flows), groups=dict(table.groups), meters=dict(table.meters)
    )


@dataclass
class _Protected:
    """What a switch reported at connect: left alone until its warm-up ends."""

    flows: set[EntryKey]
    groups: set[int]
    meters: set[int]


def _overlay(desired: SwitchTable, reported: SwitchTable) -> SwitchTable:
    """What the switch holds, plus whatever desired adds that it lacks."""
    kept = _copy(reported)
    for key, entry in desired.flows.items():
        kept.flows.setdefault(key, entry)
    for gid, grp in desired.groups.items():
        kept.groups.setdefault(gid, grp)
    for mid, meter in desired.meters.items():
        kept.meters.setdefault(mid, meter)
    return kept
