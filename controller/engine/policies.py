"""PolicyManager: the active policies, their store, and what they mean for the switches.

Hub-owned. An apply is checked completely (schema, fabric references,
same-priority overlaps) before anything is written; the store write is
durable and compare-and-set; only then does the in-memory book change. So a
rejected policy changes nothing, and an accepted one survives a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from controller.engine.views import ApplyResult
from controller.errors import AlreadyExists, NotFound, VersionConflict
from controller.fabric.topology import Topology
from controller.flowprog.classmatch import of_matches
from controller.flowprog.forwarding import PRIO_TRAP_BASE, ClassTrap
from controller.policy.book import PolicyBook
from controller.policy.limits import check_rule_budget
from controller.policy.model import Policy
from controller.policy.overlap import check_conflicts
from controller.policy.validate import validate_policy
from controller.store.policies import PolicyStore

__all__ = ["PolicyManager", "TopologyNames", "traps_for"]


class TopologyNames:
    """Lets policy validation resolve switch names/dpids against the fabric as known.

    That is the live topology, and during a takeover also what the node saw as a
    standby (``witnessed``): until the new leader has read every switch again, its
    own topology holds only the switches read so far, and a policy naming one of
    the others must not be refused as naming an unknown switch.
    """

    def __init__(self, topo: Topology, *witnessed: Topology) -> None:
        self._topos = (topo, *witnessed)

    def has_switch(self, name: str) -> bool:
        return any(t.resolve(name) is not None for t in self._topos)

    def linked(self, a: str, b: str) -> bool:
        for topo in self._topos:
            da, db = topo.resolve(a), topo.resolve(b)
            if any(lid.src.dpid == da and lid.dst.dpid == db for lid in topo.links):
                return True
        return False


def traps_for(book: PolicyBook) -> list[ClassTrap]:
    """Class traps for every per-flow policy that the catch-all does not shadow.

    OpenFlow priorities follow policy priorities by rank, so a higher-priority
    policy's trap wins where matches overlap, exactly as ``PolicyBook.governing``.
    """
    floor = book.catch_all()
    per_flow = [
        p
        for p in book.all()
        if not p.is_catch_all and (floor is None or p.priority > floor.priority)
    ]
    ranks = {prio: i + 1 for i, prio in enumerate(sorted({p.priority for p in per_flow}))}
    traps = []
    for policy in per_flow:
        for alternative in policy.match:
            for match in of_matches(alternative):
                traps.append(ClassTrap(PRIO_TRAP_BASE + ranks[policy.priority], match))
    return traps


@dataclass(frozen=True)
class Change:
    book: PolicyBook
    result: ApplyResult


class PolicyManager:
    def __init__(self, store: PolicyStore) -> None:
        self.store = store
        self.book = PolicyBook(store.list())

    def plan_apply(
        self,
        policy: Policy,
        *,
        names: TopologyNames,
        dry_run: bool,
        expected_version: int | None,
        affected: Callable[[PolicyBook], int],
    ) -> Change:
        """Check and (unless ``dry_run``) store ``policy``; returns the new book and the result."""
        validate_policy(policy, fabric=names)
        old = self.book.get(policy.name)
        check_conflicts(policy, [p for p in self.book.all() if p.name != policy.name])
        candidate = self.book.with_policy(policy)
        check_rule_budget(candidate.all())
        changes = _describe(old, policy)
        flows = affected(candidate)
        if dry_run:
            _check_version(self.book, policy.name, expected_version)
            shown = Policy(**{f.name: getattr(policy, f.name) for f in fields(Policy)})
            result = ApplyResult(
                shown, created=old is None, dry_run=True, changes=changes, flows_affected=flows
            )
            return Change(self.book, result)
        stored = self.store.put(policy, expected_version=expected_version)
        self.book = self.book.with_policy(stored)
        result = ApplyResult(
            stored, created=old is None, dry_run=False, changes=changes, flows_affected=flows
        )
        return Change(self.book, result)

    def delete(self, name: str, *, expected_version: int | None) -> int:
        if self.book.get(name) is None:
            raise NotFound("policy", name)
        version = self.store.delete(name, expected_version=expected_version)
        self.book = self.book.without(name)
        return version

    def get(self, name: str) -> Policy:
        policy = self.book.get(name)
        if policy is None:
            raise NotFound("policy", name)
        return policy


def _check_version(book: PolicyBook, name: str, expected: int | None) -> None:
    """Dry runs answer the same compare-and-set errors a real apply would."""
    current = book.get(name)
    if expected is None:
        return
    if expected == 0 and current is not None:
        raise AlreadyExists("policy", name)
    if expected > 0:
        if current is None:
            raise NotFound("policy", name)
        if current.version != expected:
            raise VersionConflict(name, expected, current.version)


def _describe(old: Policy | None, new: Policy) -> tuple[str, ...]:
    if old is None:
        return (
            f"create policy {new.name!r} (priority {new.priority}, strategy {new.strategy.value})",
        )
    diffs = []
    for f in fields(Policy):
        if f.name == "version":
            continue
        before, after = getattr(old, f.name), getattr(new, f.name)
        if before != after:
            diffs.append(f"{f.name}: {_short(before)} -> {_short(after)}")
    return tuple(diffs) or ("no change",)


def _short(value: object) -> str:
    text = getattr(value, "value", None) or str(value)
    return text if len(text) <= 120 else text[:117] + "..."
