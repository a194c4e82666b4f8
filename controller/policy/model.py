"""The policy model: which flows a policy governs and how they are balanced.

Plain frozen values shared by the YAML loader, the gRPC API, validation, the
store and the traffic-engineering layer. Parsing and validation live in
:mod:`controller.policy.parse` and :mod:`controller.policy.validate`; this
module only defines the shapes and the defaults.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field

__all__ = [
    "Strategy",
    "PortRange",
    "FlowMatch",
    "PolicyParams",
    "Policy",
    "PER_DESTINATION_STRATEGIES",
]


class Strategy(enum.Enum):
    """How a policy picks a path for each flow it governs."""

    ECMP = "ecmp"  # hash of the 5-tuple over equal-cost paths
    SHORTEST = "shortest"  # one deterministic shortest path
    LEAST_UTILIZED = "least-utilized"  # minimise the max utilization along the path
    WIDEST = "widest"  # maximise the residual capacity of the bottleneck
    WEIGHTED = "weighted"  # proportional to per-switch weights
    PINNED = "pinned"  # an explicit path, with a fallback strategy

    @classmethod
    def parse(cls, text: str) -> Strategy:
        """Strategy from its name (``least-utilized``, ``least_utilized``, ``LEAST_UTILIZED``)."""
        norm = text.strip().lower().replace("_", "-")
        for member in cls:
            if member.value == norm:
                return member
        raise ValueError(f"unknown strategy {text!r}; expected one of {[m.value for m in cls]}")


# The catch-all policy (empty match) steers traffic with per-destination
# groups, not per-flow rules, so only strategies a group can express apply.
PER_DESTINATION_STRATEGIES = frozenset({Strategy.ECMP, Strategy.SHORTEST, Strategy.WEIGHTED})


@dataclass(frozen=True, order=True)
class PortRange:
    """An inclusive L4 port range; a single port is ``PortRange(p, p)``."""

    lo: int
    hi: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.lo <= port <= self.hi

    def overlaps(self, other: PortRange) -> bool:
        return self.lo <= other.hi and other.lo <= self.hi

    def __str__(self) -> str:
        return str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"


IPNet = ipaddress.IPv4Network


@dataclass(frozen=True)
class FlowMatch:
    """Which packets a policy governs. Empty fields match anything.

    Within a field the listed values are alternatives (OR); across fields all
    must hold (AND). An all-empty match governs all traffic.
    """

    ip_proto: int | None = None  # 6 = TCP, 17 = UDP
    src_ports: tuple[PortRange, ...] = ()
    dst_ports: tuple[PortRange, ...] = ()
    dscp: tuple[int, ...] = ()
    src_hosts: tuple[IPNet, ...] = ()
    dst_hosts: tuple[IPNet, ...] = ()

    @property
    def is_catch_all(self) -> bool:
        return not (
            self.ip_proto is not None
            or self.src_ports
            or self.dst_ports
            or self.dscp
            or self.src_hosts
            or self.dst_hosts
        )


@dataclass(frozen=True)
class PolicyParams:
    """Tuning knobs of a policy. Utilizations are ratios in [0, 1]."""

    congestion_threshold: float = 0.8
    clear_threshold: float = 0.6
    rebalance_period_s: float = 5.0
    min_move_interval_s: float = 2.0
    idle_timeout_s: int = 10


@dataclass(frozen=True)
class Policy:
    """A named, versioned load-balancing policy.

    ``match`` lists alternatives: a packet is governed if any of them matches
    (so one policy can cover RoCEv2 on UDP 4791 *and* a TCP port range).
    ``version`` is assigned by the store (0 = never stored). ``weights`` maps a
    switch name (or 16-hex-digit dpid) to a relative weight; ``pinned_path`` is
    a list of switch names or dpids from ingress to egress switch.
    """

    name: str
    priority: int
    match: tuple[FlowMatch, ...] = (FlowMatch(),)  # alternatives: any may match
    strategy: Strategy = Strategy.ECMP
    params: PolicyParams = field(default_factory=PolicyParams)
    weights: tuple[tuple[str, float], ...] = ()
    pinned_path: tuple[str, ...] = ()
    fallback: Strategy = Strategy.LEAST_UTILIZED
    description: str = ""
    version: int = 0

    @property
    def weight_map(self) -> dict[str, float]:
        return dict(self.weights)

    @property
    def is_catch_all(self) -> bool:
        """Governs all traffic: forwarded by per-destination groups, not per flow."""
        return any(m.is_catch_all for m in self.match)
