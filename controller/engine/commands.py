"""Northbound commands of the engine: policies, drains and path explanations.

These run in the hub thread, handed over by the mailbox from API threads.
Each checks its input completely before changing anything, so a rejected
command changes nothing, and returns ``(result, EngineOutput)``: the answer
for the caller and what the shim must send. Kept apart from
:mod:`controller.engine.engine` (southbound events) only to keep each module
readable; :class:`~controller.engine.engine.FabricEngine` has both.
"""

from __future__ import annotations

from controller.engine.connectivity import Connectivity
from controller.engine.explain import explain_path
from controller.engine.jobs import JobManager
from controller.engine.monitor import LinkMonitor
from controller.engine.outputs import EngineOutput, EventKind, Notice
from controller.engine.placement import FlowPlacer
from controller.engine.policies import PolicyManager, TopologyNames, traps_for
from controller.engine.views import ApplyJobResult, ApplyResult, DrainResult, PathExplanation
from controller.errors import NotFound, Unavailable
from controller.fabric.model import FiveTuple, LinkId
from controller.fabric.topology import Topology
from controller.flowprog.plan import Program
from controller.jobs.model import Job
from controller.policy.model import Policy
from controller.policy.validate import NotInFabric
from controller.store.drains import Drain, DrainView
from controller.telemetry import parse_link_ref

__all__ = ["NorthboundCommands"]

# Said of a name not found while discovery still runs: it may be found in a moment.
_DISCOVERING = " (yet: the fabric is still being discovered; retry in a few seconds)"


class NorthboundCommands:
    net: Connectivity
    monitor: LinkMonitor
    policies: PolicyManager
    placer: FlowPlacer
    jobs: JobManager
    drains: DrainView

    def witnessed(self) -> tuple[Topology, ...]:
        raise NotImplementedError  # ClusterRoles'

    def _settled(self, now: float) -> bool:
        raise NotImplementedError  # FabricEngine's

    def install_policies(self, *, now: float) -> Program:
        """Make default forwarding follow the current policy book (one recomputation)."""
        book = self.policies.book
        return self.net.set_policies(catch_all=book.catch_all(), traps=traps_for(book), now=now)

    def apply_policy(
        self, policy: Policy, *, dry_run: bool, expected_version: int | None, now: float
    ) -> tuple[ApplyResult, EngineOutput]:
        try:
            change = self.policies.plan_apply(
                policy,
                names=TopologyNames(self.net.topo, *self.witnessed()),
                dry_run=dry_run,
                expected_version=expected_version,
                affected=self.placer.affected_by,
            )
        except NotInFabric as err:
            if self._settled(now):
                raise
            raise Unavailable(f"policy.{err.field}: {err.reason}{_DISCOVERING}") from err
        out = EngineOutput()
        if dry_run:
            return change.result, out
        out.add_program(self.install_policies(now=now))
        out.merge(self.placer.policies_changed(now=now))
        stored = change.result.policy
        out.notices.append(
            Notice(
                EventKind.POLICY_APPLIED,
                stored.name,
                reason="created" if change.result.created else "replaced",
                attributes=(("version", str(stored.version)), ("strategy", stored.strategy.value)),
            )
        )
        return change.result, out

    def delete_policy(
        self, name: str, *, expected_version: int | None, now: float
    ) -> tuple[int, EngineOutput]:
        version = self.policies.delete(name, expected_version=expected_version)
        out = EngineOutput()
        out.add_program(self.install_policies(now=now))
        out.merge(self.placer.policies_changed(now=now))
        out.notices.append(
            Notice(EventKind.POLICY_DELETED, name, attributes=(("version", str(version)),))
        )
        return version, out

    def _links_for(self, ref: str, now: float) -> tuple[list[LinkId], Topology]:
        """The links ``ref`` names, and the topology that knows their switches' names
        (during a takeover, possibly the one this node kept as a standby)."""
        parsed = parse_link_ref(ref, field="link")
        live = self.net.topo
        for topo in (live, *self.witnessed()):
            known = set(topo.links) | (set(self.monitor.seen_links) if topo is live else set())
            found = sorted(lid for lid in known if parsed.matches(lid, topo.label))
            if found:
                return found, topo
        if not self._settled(now):
            raise Unavailable(f"link {ref!r} not found{_DISCOVERING}")
        raise NotFound("link", ref)

    def drain(self, ref: str, *, drained: bool, now: float) -> tuple[DrainResult, EngineOutput]:
        links, topo = self._links_for(ref, now)
        # Durable first: a drain the store refused is not applied.
        self.drains.set_drained([Drain(lid, topo.link_name(lid)) for lid in links], drained=drained)
        out = EngineOutput()
        out.add_program(self.net.set_drained(links, drained, now=now))
        moves = (
            self.placer.drain(links, now=now) if drained else self.placer.undrain(links, now=now)
        )
        out.merge(moves)
        out.merge(self.jobs.on_links(links, now=now, reason="drain" if drained else "undrain"))
        kind = EventKind.LINK_DRAINED if drained else EventKind.LINK_UNDRAINED
        names = tuple(topo.link_name(lid) for lid in links)
        out.notices += [Notice(kind, name) for name in names]
        moved = sum(1 for n in moves.notices if n.kind is EventKind.FLOW_REROUTED)
        return DrainResult(links=names, flows_moved=moved), out

    def apply_job(
        self, job: Job, *, dry_run: bool, expected_version: int | None, now: float
    ) -> tuple[ApplyJobResult, EngineOutput]:
        return self.jobs.apply(job, dry_run=dry_run, expected_version=expected_version, now=now)

    def delete_job(
        self, name: str, *, expected_version: int | None, now: float
    ) -> tuple[int, EngineOutput]:
        return self.jobs.delete(name, expected_version=expected_version, now=now)

    def explain(self, ft: FiveTuple, *, dscp: int, now: float) -> PathExplanation:
        return explain_path(self.net.topo, self.policies.book, self.placer, ft, dscp=dscp, now=now)
