"""FabricController: the hub-side composition of the core, telemetry, policies and flows.

The Ryu shim calls the southbound methods (one per OpenFlow event), the
runtime calls the northbound commands (inside the hub, through the mailbox).
Every method returns a :class:`EngineOutput` for the shim to send. Nothing here
reads a clock or touches a datapath.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.engine.connectivity import Connectivity
from controller.engine.monitor import LinkMonitor
from controller.engine.outputs import EngineOutput, Notice
from controller.engine.placement import FlowPlacer, FlowSample
from controller.engine.policies import PolicyManager, traps_for
from controller.engine.views import ApplyResult, DrainResult, PathExplanation
from controller.errors import FailedPrecondition, NotFound
from controller.fabric.model import FiveTuple, LinkId, PortRef
from controller.flowprog.plan import Program
from controller.policy.model import Policy, Strategy
from controller.telemetry import CongestionEvent, PortCounters, parse_link_ref

__all__ = ["FabricController"]


class FabricController:
    def __init__(
        self, core: Connectivity, monitor: LinkMonitor, policies: PolicyManager, flows: FlowPlacer
    ) -> None:
        self.core = core
        self.monitor = monitor
        self.policies = policies
        self.flows = flows

    def install_policies(self, *, now: float) -> Program:
        """Make the switches follow the current policy book (at start and after changes)."""
        book = self.policies.book
        program = self.core.set_catch_all(book.catch_all(), now=now)
        program.extend(self.core.set_traps(traps_for(book), now=now))
        return program

    # ------------------------------------------------------------- southbound
    def trapped_packet(
        self,
        *,
        at: PortRef,
        ft: FiveTuple,
        dscp: int,
        src_mac: str,
        dst_mac: str,
        data: bytes,
        now: float,
    ) -> EngineOutput:
        return self.flows.packet_in(at=at, ft=ft, dscp=dscp, src_mac=src_mac, data=data, now=now)

    def port_stats(
        self, dpid: int, batch: list[tuple[int, PortCounters]], *, now: float
    ) -> tuple[EngineOutput, list[CongestionEvent]]:
        topo = self.core.topo
        events = self.monitor.port_stats(dpid, batch, now=now, topo=topo)
        for port, _ in batch:
            rate = self.monitor.rates.latest(PortRef(dpid, port))
            if rate is not None and rate.rx_pps > 0:
                topo.link_alive(PortRef(dpid, port), now=now)
        return self.flows.on_congestion(events, now=now), events

    def flow_stats(self, dpid: int, samples: Iterable[FlowSample], *, now: float) -> None:
        self.flows.flow_stats(dpid, samples, now=now)

    def tick(self, *, now: float) -> EngineOutput:
        return self.flows.tick(now=now)

    # ------------------------------------------------------------- northbound
    def apply_policy(
        self, policy: Policy, *, dry_run: bool, expected_version: int | None, now: float
    ) -> tuple[ApplyResult, EngineOutput]:
        change = self.policies.plan_apply(
            policy,
            topo=self.core.topo,
            dry_run=dry_run,
            expected_version=expected_version,
            affected=self.flows.affected_by,
        )
        out = EngineOutput()
        if dry_run:
            return change.result, out
        out.add_program(self.install_policies(now=now))
        out.merge(self.flows.policies_changed(now=now))
        stored = change.result.policy
        out.notices.append(
            Notice(
                "policy-applied",
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
        out.merge(self.flows.policies_changed(now=now))
        out.notices.append(Notice("policy-deleted", name, attributes=(("version", str(version)),)))
        return version, out

    def _links_for(self, ref: str) -> list[LinkId]:
        parsed = parse_link_ref(ref, field="link")
        topo = self.core.topo
        known = set(topo.links) | set(self.monitor.seen_links)
        found = sorted(lid for lid in known if parsed.matches(lid, topo.label))
        if not found:
            raise NotFound("link", ref)
        return found

    def drain(self, ref: str, *, drained: bool, now: float) -> tuple[DrainResult, EngineOutput]:
        links = self._links_for(ref)
        topo = self.core.topo
        out = EngineOutput()
        out.add_program(self.core.set_drained(links, drained, now=now))
        moves = self.flows.drain(links, now=now) if drained else self.flows.undrain(links, now=now)
        out.merge(moves)
        kind = "link-drained" if drained else "link-undrained"
        names = tuple(topo.link_name(lid) for lid in links)
        out.notices += [Notice(kind, name) for name in names]
        moved = sum(1 for n in moves.notices if n.kind == "flow-rerouted")
        return DrainResult(links=names, flows_moved=moved), out

    def explain(self, ft: FiveTuple, *, dscp: int, now: float) -> PathExplanation:
        topo = self.core.topo
        src, dst = topo.host_by_ip(ft.src_ip), topo.host_by_ip(ft.dst_ip)
        for ip, host in ((ft.src_ip, src), (ft.dst_ip, dst)):
            if host is None:
                raise FailedPrecondition(
                    f"host {ip} is unknown to the controller (it has sent no ARP or IP packet yet)"
                )
        assert src is not None and dst is not None
        policy = self.policies.book.governing(ft, dscp=dscp)
        label = topo.label
        if policy is None or policy.is_catch_all:
            strategy = policy.strategy if policy else Strategy.ECMP
            paths = self.flows.te.paths_for(self.flows.view()).paths(
                src.attach.dpid, dst.attach.dpid
            )
            hops = _merge_hops([[label(d) for d in p.switches] for p in paths])
            how = {
                Strategy.SHORTEST: "a single shortest path",
                Strategy.WEIGHTED: "a weighted SELECT group at each hop",
            }.get(strategy, "the switch's SELECT-group hash at each hop")
            return PathExplanation(
                five_tuple=ft,
                policy=policy.name if policy else "",
                strategy=strategy.value,
                path=hops,
                per_flow=False,
                flow_id=0,
                fell_back=False,
                reason=f"default forwarding: one of {len(paths)} equal-cost path(s), "
                f"chosen by {how}",
            )
        flow = self.flows.te.flow_by_five_tuple(ft)
        if flow is not None:
            moved = (
                f"; moved {flow.moves} time(s), last for {flow.last_move_reason}"
                if flow.moves
                else ""
            )
            fell = "; its pinned path is impossible, the fallback chose" if flow.fell_back else ""
            return PathExplanation(
                five_tuple=ft,
                policy=policy.name,
                strategy=policy.strategy.value,
                path=tuple(label(d) for d in flow.path.switches),
                per_flow=True,
                flow_id=flow.flow_id,
                fell_back=flow.fell_back,
                reason=f"placed per flow by {policy.strategy.value}{moved}{fell}",
            )
        choice = self.flows.te.preview(
            ft,
            ingress=src.attach.dpid,
            egress=dst.attach.dpid,
            policy=policy,
            view=self.flows.view(),
            now=now,
        )
        return PathExplanation(
            five_tuple=ft,
            policy=policy.name,
            strategy=choice.strategy.value,
            path=tuple(label(d) for d in choice.path.switches),
            per_flow=True,
            flow_id=0,
            fell_back=choice.fell_back,
            reason=f"not placed yet; its first packet would be placed here: {choice.reason}",
        )


def _merge_hops(paths: list[list[str]]) -> tuple[str, ...]:
    """Equal-length paths shown hop by hop, alternatives joined with '|'."""
    if not paths:
        return ()
    if len({len(p) for p in paths}) != 1:
        return tuple(paths[0])
    hops = []
    for i in range(len(paths[0])):
        names = sorted({p[i] for p in paths})
        hops.append("|".join(names))
    return tuple(hops)
