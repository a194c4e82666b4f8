"""An honest in-memory FabricFacade and an in-process API server for the API tests.

The fake keeps policies with real version semantics (upsert, create-only,
compare-and-set), validates with the project's policy validation, raises the
same domain errors a real controller would, publishes events on every change
and can be told to stall or fail, so the API layer is tested against
behaviour rather than canned answers.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from controller.api.server import ApiServer, ApiServerConfig, start_api_server
from controller.concurrency.eventbus import EventBus
from controller.engine.outputs import EventKind
from controller.engine.views import (
    ApplyResult,
    DrainResult,
    FlowView,
    HostView,
    LinkView,
    PathExplanation,
    PortView,
    SwitchView,
    TopologyView,
)
from controller.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    VersionConflict,
)
from controller.fabric.model import FiveTuple, LinkId, PortRef
from controller.policy.model import FlowMatch, Policy, PolicyParams, PortRange, Strategy

try:  # the fake validates like the controller does when validation is available
    from controller.policy.validate import validate_policy
except ImportError:  # pragma: no cover - only while the module is being written
    validate_policy = None

NAMES = {1: "leaf1", 2: "leaf2", 11: "spine1", 12: "spine2"}
_PORTS = {(1, 11): (3, 1), (1, 12): (4, 1), (2, 11): (3, 2), (2, 12): (4, 2)}
T0 = 1_700_000_000.0


def _link(src: int, sport: int, dst: int, dport: int, *, rate: float) -> LinkView:
    return LinkView(
        link=LinkId(PortRef(src, sport), PortRef(dst, dport)),
        name=f"{NAMES[src]}/{sport}->{NAMES[dst]}/{dport}",
        src_switch=NAMES[src],
        dst_switch=NAMES[dst],
        up=True,
        drained=False,
        capacity_bps=10e9,
        rate_bps=rate,
        utilization=rate / 10e9,
        congested=rate / 10e9 > 0.8,
    )


def pinned_policy() -> Policy:
    """A valid policy with every field its strategy allows away from the default."""
    return Policy(
        name="nccl-pinned",
        priority=200,
        match=(
            FlowMatch(
                ip_proto=17,
                dst_ports=(PortRange(4791, 4791),),
                dscp=(26, 46),
                src_hosts=(ipaddress.IPv4Network("10.0.1.0/24"),),
            ),
            FlowMatch(
                ip_proto=6,
                src_ports=(PortRange(40000, 40100),),
                dst_ports=(PortRange(29500, 29599), PortRange(30000, 30010)),
                dst_hosts=(
                    ipaddress.IPv4Network("10.0.2.0/24"),
                    ipaddress.IPv4Network("10.0.3.7/32"),
                ),
            ),
        ),
        strategy=Strategy.PINNED,
        params=PolicyParams(
            congestion_threshold=0.7,
            clear_threshold=0.5,
            rebalance_period_s=3.0,
            min_move_interval_s=1.5,
            idle_timeout_s=30,
        ),
        pinned_path=("leaf1", "spine2", "leaf2"),
        fallback=Strategy.WIDEST,
        description="NCCL rings pinned through spine2",
    )


def weighted_policy() -> Policy:
    return Policy(
        name="roce-weighted",
        priority=100,
        match=(FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),)),),
        strategy=Strategy.WEIGHTED,
        weights=(("spine1", 3.0), ("spine2", 1.0)),
    )


def sample_links() -> list[LinkView]:
    links = []
    for (leaf, spine), (lport, sport) in sorted(_PORTS.items()):
        links.append(_link(leaf, lport, spine, sport, rate=1e9 * leaf))
        links.append(_link(spine, sport, leaf, lport, rate=9e9 if spine == 12 else 2e8))
    return links


class FakeFacade:
    """A two-leaf, two-spine fabric with two hosts and one placed flow."""

    def __init__(self) -> None:
        self.bus = EventBus(ring_size=64)
        self.lock = threading.Lock()
        self.now = T0
        self.policies: dict[str, Policy] = {}
        self.links = sample_links()
        self.hosts = (
            HostView(mac="00:00:00:00:00:01", ipv4="10.0.1.1", switch="leaf1", dpid=1, port=1),
            HostView(mac="00:00:00:00:00:02", ipv4="10.0.2.1", switch="leaf2", dpid=2, port=1),
        )
        self.flows = [
            FlowView(
                flow_id=7,
                five_tuple=FiveTuple("10.0.1.1", "10.0.2.1", 17, 49152, 4791),
                dscp=26,
                policy="roce",
                strategy="least-utilized",
                path=("leaf1", "spine1", "leaf2"),
                path_links=("leaf1/3->spine1/1", "spine1/2->leaf2/3"),
                rate_bps=4e9,
                placed_at=T0 - 10,
                moves=1,
                last_move_reason="congestion",
                last_move_at=T0 - 2.5,
                fell_back=False,
            )
        ]
        # Test hooks: raise this from the next call, or block calls until set.
        self.fail_next: BaseException | None = None
        self.gate = threading.Event()
        self.gate.set()
        self.calls: list[str] = []

    # ------------------------------------------------------------------ helpers
    def _enter(self, name: str) -> None:
        self.calls.append(name)
        self.gate.wait(timeout=10)
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc

    def _tick(self) -> float:
        self.now += 1.0
        return self.now

    def publish(self, kind: EventKind, subject: str, **kw: Any) -> None:
        self.bus.publish(kind, subject, time=self._tick(), **kw)

    # ------------------------------------------------------------------ FabricFacade
    @property
    def events(self) -> EventBus:
        return self.bus

    def ready(self) -> bool:
        return True

    def get_topology(self) -> TopologyView:
        self._enter("get_topology")
        switches = tuple(
            SwitchView(
                dpid=dpid,
                name=name,
                connected=True,
                ports=tuple(
                    PortView(port_no=p, name=f"{name}-eth{p}", up=True, fabric=p > 2)
                    for p in (1, 3, 4)
                ),
            )
            for dpid, name in sorted(NAMES.items())
        )
        return TopologyView(switches=switches, links=tuple(self.links), hosts=self.hosts)

    def list_links(self) -> list[LinkView]:
        self._enter("list_links")
        return list(self.links)

    def list_flows(self, *, policy: str = "") -> list[FlowView]:
        self._enter("list_flows")
        return [f for f in self.flows if not policy or f.policy == policy]

    def apply_policy(
        self, policy: Policy, *, dry_run: bool = False, expected_version: int | None = None
    ) -> ApplyResult:
        self._enter("apply_policy")
        if validate_policy is not None:
            validate_policy(policy)
        with self.lock:
            existing = self.policies.get(policy.name)
            current = existing.version if existing else 0
            if expected_version == 0 and existing is not None:
                raise AlreadyExists("policy", policy.name)
            if expected_version and expected_version != current:
                raise VersionConflict(policy.name, expected_version, current)
            stored = replace(policy, version=current + 1)
            changes = (
                (f"create policy {policy.name}",)
                if existing is None
                else tuple(
                    f"{field}: {getattr(existing, field)!r} -> {getattr(policy, field)!r}"
                    for field in ("priority", "match", "strategy", "params", "description")
                    if getattr(existing, field) != getattr(policy, field)
                )
            )
            affected = sum(1 for f in self.flows if f.policy == policy.name)
            if not dry_run:
                self.policies[policy.name] = stored
                self.publish(EventKind.POLICY_APPLIED, policy.name, reason="api")
        return ApplyResult(
            policy=stored,
            created=existing is None,
            dry_run=dry_run,
            changes=changes,
            flows_affected=affected,
        )

    def get_policy(self, name: str) -> Policy:
        self._enter("get_policy")
        with self.lock:
            if name not in self.policies:
                raise NotFound("policy", name)
            return self.policies[name]

    def list_policies(self) -> list[Policy]:
        self._enter("list_policies")
        with self.lock:
            return sorted(self.policies.values(), key=lambda p: p.name)

    def delete_policy(self, name: str, *, expected_version: int | None = None) -> int:
        self._enter("delete_policy")
        with self.lock:
            if name not in self.policies:
                raise NotFound("policy", name)
            current = self.policies[name].version
            if expected_version is not None and expected_version != current:
                raise VersionConflict(name, expected_version, current)
            del self.policies[name]
            self.publish(EventKind.POLICY_DELETED, name)
            return current

    def _links_named(self, ref: str) -> list[int]:
        a, sep, b = ref.partition("-")
        if not sep or not a or not b:
            raise InvalidArgument("link", f"{ref!r} is neither A-B nor A/p-B/q")

        def end(text: str) -> tuple[str, int | None]:
            name, slash, port = text.partition("/")
            if slash and not port.isdigit():
                raise InvalidArgument("link", f"{text!r}: the port must be a number")
            return name, int(port) if slash else None

        ends = (end(a), end(b))
        found = []
        for i, lv in enumerate(self.links):
            for (x, xp), (y, yp) in (ends, ends[::-1]):
                if (
                    (lv.src_switch, lv.dst_switch) == (x, y)
                    and xp in (None, lv.link.src.port)
                    and yp in (None, lv.link.dst.port)
                ):
                    found.append(i)
                    break
        if not found:
            raise NotFound("link", ref)
        return found

    def _set_drained(self, ref: str, drained: bool, kind: EventKind) -> DrainResult:
        with self.lock:
            idx = self._links_named(ref)
            if all(self.links[i].drained == drained for i in idx):
                state = "drained" if drained else "not drained"
                raise FailedPrecondition(f"link {ref} is already {state}")
            for i in idx:
                self.links[i] = replace(self.links[i], drained=drained)
            self.publish(kind, ref)
            names = tuple(self.links[i].name for i in idx)
        return DrainResult(links=names, flows_moved=1 if drained else 0)

    def drain_link(self, link: str) -> DrainResult:
        self._enter("drain_link")
        return self._set_drained(link, True, EventKind.LINK_DRAINED)

    def undrain_link(self, link: str) -> DrainResult:
        self._enter("undrain_link")
        return self._set_drained(link, False, EventKind.LINK_UNDRAINED)

    def explain_path(self, five_tuple: FiveTuple, *, dscp: int = 0) -> PathExplanation:
        self._enter("explain_path")
        by_ip = {h.ipv4: h for h in self.hosts}
        for ip in (five_tuple.src_ip, five_tuple.dst_ip):
            if ip not in by_ip:
                raise NotFound("host", ip)
        placed = [f for f in self.flows if f.five_tuple == five_tuple]
        if placed:
            f = placed[0]
            return PathExplanation(
                five_tuple=five_tuple,
                policy=f.policy,
                strategy=f.strategy,
                path=f.path,
                per_flow=True,
                flow_id=f.flow_id,
                fell_back=f.fell_back,
                reason=f"placed by policy {f.policy} (dscp {dscp})",
            )
        src, dst = by_ip[five_tuple.src_ip].switch, by_ip[five_tuple.dst_ip].switch
        return PathExplanation(
            five_tuple=five_tuple,
            policy="default",
            strategy=Strategy.ECMP.value,
            path=(src, "spine1", dst),
            per_flow=False,
            flow_id=0,
            fell_back=False,
            reason="no policy matches; per-destination ECMP groups forward it",
        )


@contextlib.contextmanager
def running_server(facade: Any, **config: Any) -> Iterator[ApiServer]:
    """An API server on a free loopback port, stopped afterwards."""
    server = start_api_server(facade, ApiServerConfig(listen="127.0.0.1:0", **config))
    try:
        yield server
    finally:
        server.stop(grace=0)
