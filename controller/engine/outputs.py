"""What the engine asks the OpenFlow shim to do, as plain data, and the event vocabulary.

The engine never touches a datapath: every call returns an
:class:`EngineOutput` holding programs (phased flow/group/meter changes),
packets to send, requests to send (table reads, statistics), notices for
the event stream, and when it wants to be called again. The shim is the
single place that turns these into OpenFlow messages; it adds nothing and
decides nothing. :class:`EventKind` is the one vocabulary of what happened,
shared by notices, the event bus and the API.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from controller.fabric.model import Dpid, LinkId, PortNo
from controller.flowprog.plan import Op, Program

if TYPE_CHECKING:
    from controller.telemetry.congestion import CongestionEvent

__all__ = [
    "EventKind",
    "Notice",
    "congestion_notice",
    "PacketOut",
    "TablePart",
    "TableRead",
    "PortStatsRequest",
    "FlowStatsRequest",
    "RoleRequest",
    "SlavePacketIns",
    "Request",
    "HeapWork",
    "EngineOutput",
]


class EventKind(enum.Enum):
    SWITCH_UP = "switch-up"
    SWITCH_DOWN = "switch-down"
    LINK_UP = "link-up"
    LINK_DOWN = "link-down"
    HOST_LEARNED = "host-learned"
    HOST_MOVED = "host-moved"
    POLICY_APPLIED = "policy-applied"
    POLICY_DELETED = "policy-deleted"
    POLICY_FALLBACK = "policy-fallback"
    FLOW_PLACED = "flow-placed"
    FLOW_REROUTED = "flow-rerouted"
    FLOW_EXPIRED = "flow-expired"
    LINK_CONGESTED = "link-congested"
    LINK_CLEARED = "link-cleared"
    LINK_DRAINED = "link-drained"
    LINK_UNDRAINED = "link-undrained"
    JOB_PLACED = "job-placed"
    JOB_REPLACED = "job-replaced"
    JOB_DELETED = "job-deleted"


@dataclass(frozen=True)
class Notice:
    """Something for the event stream."""

    kind: EventKind
    subject: str
    reason: str = ""
    attributes: tuple[tuple[str, str], ...] = ()


def congestion_notice(ev: CongestionEvent, link_name: Callable[[LinkId], str]) -> Notice:
    """The notice of a link found congested, or clear again."""
    return Notice(
        EventKind.LINK_CONGESTED if ev.congested else EventKind.LINK_CLEARED,
        link_name(ev.link),
        reason=f"utilization {ev.utilization:.2f}",
        attributes=(("utilization", f"{ev.utilization:.4f}"),),
    )


@dataclass(frozen=True)
class PacketOut:
    """Send ``data`` out of ``out_port`` on ``dpid``; ``out_port=None`` means "through
    the flow table as if it arrived on ``in_port``" (OFPP_TABLE)."""

    dpid: Dpid
    data: bytes
    out_port: PortNo | None = None
    in_port: PortNo | None = None


class TablePart(enum.Enum):
    """What a switch is asked to report when its tables are read."""

    PORTS = "ports"
    FLOWS = "flows"
    GROUPS = "groups"
    METERS = "meters"


@dataclass(frozen=True)
class TableRead:
    dpid: Dpid
    part: TablePart


@dataclass(frozen=True)
class PortStatsRequest:
    dpid: Dpid


@dataclass(frozen=True)
class FlowStatsRequest:
    """Flow statistics of the entries whose cookie matches ``cookie`` under ``mask``."""

    dpid: Dpid
    cookie: int
    mask: int


@dataclass(frozen=True)
class RoleRequest:
    """Claim the OpenFlow role on ``dpid``: MASTER (``master``) or SLAVE, with the
    cluster leader's ``generation`` (switches refuse a stale one)."""

    dpid: Dpid
    master: bool
    generation: int


@dataclass(frozen=True)
class SlavePacketIns:
    """Ask ``dpid`` to send this controller, while it is a SLAVE, the packet-ins of
    controller actions (the leader's LLDP probes among them), which OpenFlow 1.3
    switches send only to MASTER and EQUAL controllers by default."""

    dpid: Dpid


Request = TableRead | PortStatsRequest | FlowStatsRequest | RoleRequest | SlavePacketIns

# What the hub should do with Python's cyclic garbage collector (see EngineOutput.heap).
HeapWork = Literal["freeze", "collect"]


@dataclass
class EngineOutput:
    programs: list[Program] = field(default_factory=list)
    # Sent at once, before ``packets``, without waiting for the program queue
    # (each list ends with a barrier, so packets sent after it see its effect).
    immediate: list[tuple[Dpid, list[Op]]] = field(default_factory=list)
    # Programs on one switch each: sent at once after ``immediate`` and before
    # ``packets``, not queued behind other programs, their phases joined by barriers
    # (:meth:`Program.joined`); confirmed like the others, by a barrier at the end.
    urgent: list[Program] = field(default_factory=list)
    packets: list[PacketOut] = field(default_factory=list)  # send now
    packets_after: list[PacketOut] = field(default_factory=list)  # once programs are done
    requests: list[Request] = field(default_factory=list)  # send now
    notices: list[Notice] = field(default_factory=list)
    resync: set[Dpid] = field(default_factory=set)  # engine-internal: re-read these tables
    wake_in: float | None = None  # call tick again within this many seconds
    # "freeze": move every object alive now out of the collector's sight
    # (``gc.freeze()``): flows, paths and tables live long and hold no cycles, and
    # a collector that walks all of them again and again costs the hub ~20 % of
    # its placement rate with 100k flows. "collect": unfreeze, collect, freeze
    # again (reclaims cycles that became garbage after they were frozen).
    heap: HeapWork | None = None

    def add_program(self, program: Program) -> None:
        if program:
            self.programs.append(program)

    def merge(self, other: EngineOutput) -> EngineOutput:
        self.programs += other.programs
        self.immediate += other.immediate
        self.urgent += other.urgent
        self.packets += other.packets
        self.packets_after += other.packets_after
        self.requests += other.requests
        self.notices += other.notices
        self.resync |= other.resync
        if other.heap is not None and self.heap != "collect":
            self.heap = other.heap
        if other.wake_in is not None:
            self.wake_in = (
                other.wake_in if self.wake_in is None else min(self.wake_in, other.wake_in)
            )
        return self

    def __bool__(self) -> bool:
        return bool(
            self.programs
            or self.immediate
            or self.urgent
            or self.packets
            or self.packets_after
            or self.requests
            or self.notices
            or self.resync
        )
