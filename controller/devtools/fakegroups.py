"""Which flows and groups of a fake switch use a group (a delete of a used group fails).

Scanning every flow and bucket at each group delete made applying a spine
failure at 64 x 512 take minutes in the benchmarks (thousands of deletes on
switches of ~1,600 entries). While a batch of operations is applied,
:class:`GroupUsers` keeps the count per group instead; it is made at the
batch's first group delete and dropped at its end, so tables changed
directly between batches (tests do) are never counted stale.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from controller.flowprog.entries import Action, FlowEntry, GroupAction, GroupEntry

__all__ = ["GroupUsers", "group_users"]


def group_users(flows: Iterable[FlowEntry], groups: Iterable[GroupEntry], gid: int) -> list[str]:
    """What uses group ``gid``: flows by match, groups by id."""
    use = GroupAction(gid)
    users = [str(e.match) for e in flows if use in e.actions]
    users += [f"group {g.group_id:#x}" for g in groups if any(use in b.actions for b in g.buckets)]
    return users


def _named(actions: Iterable[Action]) -> Iterable[int]:
    return (a.group_id for a in actions if isinstance(a, GroupAction))


class GroupUsers:
    """Users per group id of one switch's tables, kept up to date op by op."""

    def __init__(self, flows: Iterable[FlowEntry], groups: Iterable[GroupEntry]) -> None:
        self.count: Counter[int] = Counter()
        for entry in flows:
            self.flow(None, entry)
        for grp in groups:
            self.group(None, grp)

    def flow(self, old: FlowEntry | None, new: FlowEntry | None) -> None:
        """A flow entry replaced (None: absent before or after)."""
        if old is not None:
            self.count.subtract(_named(old.actions))
        if new is not None:
            self.count.update(_named(new.actions))

    def group(self, old: GroupEntry | None, new: GroupEntry | None) -> None:
        """A group replaced (None: absent before or after)."""
        if old is not None:
            self.count.subtract(g for b in old.buckets for g in _named(b.actions))
        if new is not None:
            self.count.update(g for b in new.buckets for g in _named(b.actions))

    def used(self, gid: int) -> bool:
        return self.count[gid] > 0
