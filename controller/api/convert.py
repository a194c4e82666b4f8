"""Conversions between the controller's read models / policies and ``fabric.v1`` messages.

Going out (views -> proto) is total: every view has a message. Coming in
(proto -> :class:`Policy`, :class:`FiveTuple`, :class:`EventKind`) checks what
the wire types cannot express - a CIDR that is not an IPv4 network, a port
above 65535 in a ``uint32``, an enum number this build does not know - and
raises :class:`InvalidArgument` with a field path in proto field names
(``policy.match[0].dst_ports[1].lo``). Semantic rules (thresholds, names,
strategy combinations, pinned path vs fabric) are the facade's job, not this
module's; nothing here talks to the network or keeps state.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from fabric.v1 import fabric_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from controller.cluster.status import ClusterStatusView
from controller.concurrency.eventbus import EventRecord
from controller.engine.outputs import EventKind
from controller.engine.views import (
    ApplyResult,
    DrainResult,
    FlowView,
    HostView,
    LinkView,
    PathExplanation,
    SwitchView,
    TopologyView,
)
from controller.errors import InvalidArgument
from controller.fabric.model import FiveTuple, dpid_str
from controller.policy.model import FlowMatch, Policy, PolicyParams, PortRange, Strategy

__all__ = [
    "strategy_to_proto",
    "strategy_from_proto",
    "event_kind_to_proto",
    "event_kind_from_proto",
    "timestamp",
    "policy_to_proto",
    "policy_from_proto",
    "five_tuple_to_proto",
    "five_tuple_from_proto",
    "link_to_proto",
    "topology_to_proto",
    "flow_to_proto",
    "explanation_to_proto",
    "apply_result_to_proto",
    "drain_result_links",
    "check_dscp",
    "event_to_proto",
]

_MAX_PORT = 65535
_MAX_DSCP = 63
_MAX_IP_PROTO = 255
# UNSPECIFIED enums on the wire mean "the model's default", read from the model
# so the two never drift apart.
_MODEL_DEFAULTS = Policy(name="", priority=0)


# --------------------------------------------------------------------------- enums


def strategy_to_proto(strategy: Strategy | str) -> int:
    """Proto enum number of a strategy; a name the model does not know maps to UNSPECIFIED."""
    if isinstance(strategy, str):
        try:
            strategy = Strategy.parse(strategy)
        except ValueError:
            return int(pb.STRATEGY_UNSPECIFIED)
    return int(pb.Strategy.Value(f"STRATEGY_{strategy.name}"))


def strategy_from_proto(value: int, *, field: str, default: Strategy) -> Strategy:
    """The model strategy of an enum number; UNSPECIFIED means ``default``."""
    if value == pb.STRATEGY_UNSPECIFIED:
        return default
    try:
        name = pb.Strategy.Name(value)
    except ValueError:
        raise InvalidArgument(field, f"unknown strategy number {value}") from None
    return Strategy[name.removeprefix("STRATEGY_")]


def event_kind_to_proto(kind: EventKind) -> int:
    return int(pb.EventKind.Value(f"EVENT_KIND_{kind.name}"))


def event_kind_from_proto(value: int, *, field: str) -> EventKind:
    if value == pb.EVENT_KIND_UNSPECIFIED:
        raise InvalidArgument(field, "EVENT_KIND_UNSPECIFIED is not an event kind")
    try:
        name = pb.EventKind.Name(value)
    except ValueError:
        raise InvalidArgument(field, f"unknown event kind number {value}") from None
    try:
        return EventKind[name.removeprefix("EVENT_KIND_")]
    except KeyError:  # in the API but not (yet) published by this controller
        raise InvalidArgument(field, f"{name} is not published by this controller") from None


def timestamp(unix_seconds: float) -> Timestamp:
    """A Timestamp to the microsecond: a float of unix seconds holds no finer digits
    (its resolution near today is about 0.24 us), so finer ones would be noise."""
    ts = Timestamp()
    ts.FromMicroseconds(round(unix_seconds * 1e6))
    return ts


# --------------------------------------------------------------------------- policy


def _match_to_proto(match: FlowMatch) -> Any:
    msg = pb.FlowMatch(
        src_ports=[pb.PortRange(lo=r.lo, hi=r.hi) for r in match.src_ports],
        dst_ports=[pb.PortRange(lo=r.lo, hi=r.hi) for r in match.dst_ports],
        dscp=list(match.dscp),
        src_hosts=[str(n) for n in match.src_hosts],
        dst_hosts=[str(n) for n in match.dst_hosts],
    )
    if match.ip_proto is not None:
        msg.ip_proto = match.ip_proto
    return msg


def policy_to_proto(policy: Policy) -> Any:
    """The wire form of a policy; every params field is set, so readers see the values in force."""
    p = policy.params
    return pb.Policy(
        name=policy.name,
        priority=policy.priority,
        match=[_match_to_proto(m) for m in policy.match],
        strategy=strategy_to_proto(policy.strategy),
        params=pb.PolicyParams(
            congestion_threshold=p.congestion_threshold,
            clear_threshold=p.clear_threshold,
            rebalance_period_s=p.rebalance_period_s,
            min_move_interval_s=p.min_move_interval_s,
            idle_timeout_s=p.idle_timeout_s,
        ),
        weights=dict(policy.weights),
        pinned_path=list(policy.pinned_path),
        fallback=strategy_to_proto(policy.fallback),
        description=policy.description,
        version=policy.version,
    )


def _bounded(value: int, limit: int, field: str) -> int:
    if value > limit:
        raise InvalidArgument(field, f"must be 0..{limit}, got {value}")
    return value


def _port_ranges(ranges: Iterable[Any], field: str) -> tuple[PortRange, ...]:
    out = []
    for i, r in enumerate(ranges):
        lo = _bounded(r.lo, _MAX_PORT, f"{field}[{i}].lo")
        hi = _bounded(r.hi, _MAX_PORT, f"{field}[{i}].hi")
        out.append(PortRange(lo, hi))
    return tuple(out)


def _networks(texts: Iterable[str], field: str) -> tuple[ipaddress.IPv4Network, ...]:
    out = []
    for i, text in enumerate(texts):
        where = f"{field}[{i}]"
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            if "host bits set" in str(exc):
                raise InvalidArgument(
                    where, f"{text!r} has host bits set; give the network address of the prefix"
                ) from None
            raise InvalidArgument(where, f"{text!r} is not an IPv4 network in CIDR form") from None
        if not isinstance(net, ipaddress.IPv4Network):
            raise InvalidArgument(where, f"{text!r} is IPv6; only IPv4 is supported")
        out.append(net)
    return tuple(out)


def _match_from_proto(msg: Any, field: str) -> FlowMatch:
    ip_proto = None
    if msg.HasField("ip_proto"):
        ip_proto = _bounded(msg.ip_proto, _MAX_IP_PROTO, f"{field}.ip_proto")
    return FlowMatch(
        ip_proto=ip_proto,
        src_ports=_port_ranges(msg.src_ports, f"{field}.src_ports"),
        dst_ports=_port_ranges(msg.dst_ports, f"{field}.dst_ports"),
        dscp=tuple(_bounded(d, _MAX_DSCP, f"{field}.dscp[{i}]") for i, d in enumerate(msg.dscp)),
        src_hosts=_networks(msg.src_hosts, f"{field}.src_hosts"),
        dst_hosts=_networks(msg.dst_hosts, f"{field}.dst_hosts"),
    )


def _params_from_proto(msg: Any) -> PolicyParams:
    # Unset optional fields keep the model's defaults, so a client may send
    # only the knobs it wants to change.
    defaults = PolicyParams()
    return PolicyParams(
        congestion_threshold=(
            msg.congestion_threshold
            if msg.HasField("congestion_threshold")
            else defaults.congestion_threshold
        ),
        clear_threshold=(
            msg.clear_threshold if msg.HasField("clear_threshold") else defaults.clear_threshold
        ),
        rebalance_period_s=(
            msg.rebalance_period_s
            if msg.HasField("rebalance_period_s")
            else defaults.rebalance_period_s
        ),
        min_move_interval_s=(
            msg.min_move_interval_s
            if msg.HasField("min_move_interval_s")
            else defaults.min_move_interval_s
        ),
        idle_timeout_s=(
            msg.idle_timeout_s if msg.HasField("idle_timeout_s") else defaults.idle_timeout_s
        ),
    )


def policy_from_proto(msg: Any, *, field: str = "policy") -> Policy:
    """A :class:`Policy` from its wire form (``version`` is output only and ignored).

    Raises :class:`InvalidArgument` naming the field for what the proto types
    allow but the model cannot hold.
    """
    if not msg.match:
        # proto3 cannot tell "unset" from "empty"; guessing "all traffic" would
        # let a forgotten field take over the whole fabric.
        raise InvalidArgument(
            f"{field}.match",
            "at least one alternative is required; one empty FlowMatch matches all traffic",
        )
    return Policy(
        name=msg.name,
        priority=msg.priority,
        match=tuple(_match_from_proto(m, f"{field}.match[{i}]") for i, m in enumerate(msg.match)),
        strategy=strategy_from_proto(
            msg.strategy, field=f"{field}.strategy", default=_MODEL_DEFAULTS.strategy
        ),
        params=_params_from_proto(msg.params),
        weights=tuple(sorted(msg.weights.items())),
        pinned_path=tuple(msg.pinned_path),
        fallback=strategy_from_proto(
            msg.fallback, field=f"{field}.fallback", default=_MODEL_DEFAULTS.fallback
        ),
        description=msg.description,
    )


# --------------------------------------------------------------------------- flows and paths


def five_tuple_to_proto(ft: FiveTuple) -> Any:
    return pb.FiveTuple(
        src_ip=ft.src_ip,
        dst_ip=ft.dst_ip,
        ip_proto=ft.ip_proto,
        src_port=ft.src_port,
        dst_port=ft.dst_port,
    )


def _ipv4(text: str, field: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise InvalidArgument(field, f"{text!r} is not an IPv4 address") from None


def five_tuple_from_proto(msg: Any, *, field: str) -> FiveTuple:
    return FiveTuple(
        src_ip=_ipv4(msg.src_ip, f"{field}.src_ip"),
        dst_ip=_ipv4(msg.dst_ip, f"{field}.dst_ip"),
        ip_proto=_bounded(msg.ip_proto, _MAX_IP_PROTO, f"{field}.ip_proto"),
        src_port=_bounded(msg.src_port, _MAX_PORT, f"{field}.src_port"),
        dst_port=_bounded(msg.dst_port, _MAX_PORT, f"{field}.dst_port"),
    )


def check_dscp(value: int, *, field: str) -> int:
    return _bounded(value, _MAX_DSCP, field)


def flow_to_proto(flow: FlowView) -> Any:
    msg = pb.Flow(
        flow_id=flow.flow_id,
        five_tuple=five_tuple_to_proto(flow.five_tuple),
        dscp=flow.dscp,
        policy=flow.policy,
        strategy=strategy_to_proto(flow.strategy),
        path=list(flow.path),
        path_links=list(flow.path_links),
        rate_bps=flow.rate_bps,
        placed_time=timestamp(flow.placed_at),
        moves=flow.moves,
        last_move_reason=flow.last_move_reason,
        fell_back=flow.fell_back,
    )
    if flow.moves:
        msg.last_move_time.CopyFrom(timestamp(flow.last_move_at))
    return msg


def explanation_to_proto(exp: PathExplanation) -> Any:
    return pb.ExplainPathResponse(
        five_tuple=five_tuple_to_proto(exp.five_tuple),
        policy=exp.policy,
        strategy=strategy_to_proto(exp.strategy),
        path=list(exp.path),
        per_flow=exp.per_flow,
        flow_id=exp.flow_id,
        fell_back=exp.fell_back,
        reason=exp.reason,
    )


# --------------------------------------------------------------------------- topology


def link_to_proto(link: LinkView) -> Any:
    return pb.Link(
        name=link.name,
        src_switch=link.src_switch,
        src_dpid=dpid_str(link.link.src.dpid),
        src_port=link.link.src.port,
        dst_switch=link.dst_switch,
        dst_dpid=dpid_str(link.link.dst.dpid),
        dst_port=link.link.dst.port,
        state=pb.LINK_STATE_UP if link.up else pb.LINK_STATE_DOWN,
        drained=link.drained,
        capacity_bps=link.capacity_bps,
        rate_bps=link.rate_bps,
        utilization=link.utilization,
        congested=link.congested,
    )


def _switch_to_proto(sw: SwitchView) -> Any:
    return pb.Switch(
        dpid=dpid_str(sw.dpid),
        name=sw.name,
        connected=sw.connected,
        ports=[pb.Port(port_no=p.port_no, name=p.name, up=p.up, fabric=p.fabric) for p in sw.ports],
    )


def _host_to_proto(host: HostView) -> Any:
    return pb.Host(
        mac=host.mac,
        ipv4=host.ipv4,
        switch=host.switch,
        dpid=dpid_str(host.dpid),
        port=host.port,
    )


def topology_to_proto(topo: TopologyView) -> Any:
    return pb.GetTopologyResponse(
        switches=[_switch_to_proto(s) for s in topo.switches],
        links=[link_to_proto(link) for link in topo.links],
        hosts=[_host_to_proto(h) for h in topo.hosts],
    )


# --------------------------------------------------------------------------- results and events


def apply_result_to_proto(result: ApplyResult) -> Any:
    return pb.ApplyPolicyResponse(
        policy=policy_to_proto(result.policy),
        created=result.created,
        dry_run=result.dry_run,
        changes=list(result.changes),
        flows_affected=result.flows_affected,
    )


def drain_result_links(result: DrainResult) -> dict[str, Any]:
    """Keyword arguments shared by DrainLinkResponse and UndrainLinkResponse."""
    return {"links": list(result.links), "flows_moved": result.flows_moved}


def event_to_proto(record: EventRecord) -> Any:
    return pb.Event(
        seq=record.seq,
        time=timestamp(record.time),
        kind=event_kind_to_proto(record.kind),
        subject=record.subject,
        reason=record.reason,
        attributes=dict(record.attributes),
    )


_MODES = {"single": pb.CLUSTER_MODE_SINGLE, "etcd": pb.CLUSTER_MODE_ETCD}


def cluster_status_to_proto(view: ClusterStatusView) -> Any:
    return pb.GetClusterStatusResponse(
        mode=_MODES.get(view.mode, pb.CLUSTER_MODE_UNSPECIFIED),
        node_id=view.node_id,
        role=view.role,
        leader_id=view.leader_id,
        generation_id=view.generation_id,
        lease_id=view.lease_id,
        lease_ttl_s=view.lease_ttl_s,
        leader_changes=view.leader_changes,
        endpoints=[
            pb.EtcdEndpoint(url=url, healthy=healthy, error=why)
            for url, healthy, why in view.endpoints
        ],
        nodes=[pb.ClusterNode(node_id=n.node_id, grpc=n.grpc, leader=n.leader) for n in view.nodes],
        store=view.store,
    )
