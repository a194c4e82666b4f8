"""Flow and group entries as plain data, independent of any OpenFlow library.

The core describes the tables it wants with these values; the Ryu shim turns
them into ``OFPFlowMod`` / ``OFPGroupMod`` and turns what a switch reports
back into them, so "desired" and "installed" compare with ``==``.

Match fields use OpenFlow 1.3 OXM names as Ryu spells them (``eth_dst``,
``ipv4_dst``, ``tcp_dst`` ...). MACs are lower-case strings, IPv4 addresses
dotted strings, masked values ``(value, mask)`` tuples; ``vlan_vid`` values
carry the ``OFPVID_PRESENT`` bit, as switches report them.

A flow entry's action list may end with two OpenFlow *instructions*,
:class:`WriteMetadata` then :class:`GotoTable`; they are kept in the same
tuple so that copying a route's actions copies where it continues, and
:func:`split_instructions` separates them again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import ClassVar, final

__all__ = [
    "MatchValue",
    "Match",
    "Output",
    "ToController",
    "GroupAction",
    "output",
    "group_action",
    "PushVlan",
    "PopVlan",
    "SetField",
    "WriteMetadata",
    "GotoTable",
    "Action",
    "IN_PORT",
    "OFPVID_PRESENT",
    "ETH_VLAN",
    "split_instructions",
    "FlowEntry",
    "EntryKey",
    "Bucket",
    "GroupType",
    "GroupEntry",
    "Cookie",
    "CookieKind",
    "MeterEntry",
]

MatchValue = int | str | tuple[int, int] | tuple[str, str]


@dataclass(frozen=True, order=True)
class Match:
    """An OXM match as a sorted tuple of (field, value) pairs."""

    fields: tuple[tuple[str, MatchValue], ...] = ()
    _hash: ClassVar[int | None] = None  # per instance once hashed (no __dict__ made)

    def __hash__(self) -> int:
        # Every table lookup hashes its entry's key, and with it this match (a tuple
        # of pairs, not cached by Python): computed once per match, the value the
        # generated hash would give.
        cached = self._hash
        if cached is None:
            cached = hash((self.fields,))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __getstate__(self) -> dict[str, object]:
        return {"fields": self.fields}  # a hash is only valid in the process that made it

    @classmethod
    def of(cls, **fields: MatchValue) -> Match:
        return cls(tuple(sorted(fields.items())))

    def as_dict(self) -> dict[str, MatchValue]:
        return dict(self.fields)

    def get(self, name: str) -> MatchValue | None:
        return dict(self.fields).get(name)

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.fields) or "*"


@dataclass(frozen=True, order=True)
class Output:
    port: int


@dataclass(frozen=True, order=True)
class ToController:
    """Send to the controller, whole packet (no switch buffering)."""


@dataclass(frozen=True, order=True)
class GroupAction:
    group_id: int


# One action value per port and per group, shared by every rule and route that
# sends there (actions are immutable): a new flow's rules make no new ones, and
# comparing a flow's hop with the host route it would replace is an identity check.
output = lru_cache(maxsize=8192)(Output)
group_action = lru_cache(maxsize=8192)(GroupAction)


@dataclass(frozen=True, order=True)
class PushVlan:
    """Push an 802.1Q tag (its VID starts as 0; set it with :class:`SetField`)."""

    ethertype: int = 0x8100


@dataclass(frozen=True, order=True)
class PopVlan:
    """Remove the outermost VLAN tag (the match or an earlier push must guarantee one)."""


@dataclass(frozen=True, order=True)
class SetField:
    """Overwrite header ``field`` (an OXM name) with ``value`` (no mask)."""

    field: str
    value: int


@final  # the instructions are told from actions by type (split_instructions)
@dataclass(frozen=True, order=True)
class WriteMetadata:
    """Instruction: set the pipeline metadata register (carried to later tables)."""

    value: int
    mask: int = 0xFFFFFFFFFFFFFFFF


@final
@dataclass(frozen=True, order=True)
class GotoTable:
    """Instruction: continue the lookup in a later table."""

    table_id: int


Action = (
    Output | ToController | GroupAction | PushVlan | PopVlan | SetField | WriteMetadata | GotoTable
)
_INSTRUCTIONS = frozenset({WriteMetadata, GotoTable})  # final classes: type() tells them

IN_PORT = 0xFFFFFFF8  # OFPP_IN_PORT: Output(IN_PORT) sends a packet back where it came in
OFPVID_PRESENT = 0x1000  # the "a tag is present" bit of every vlan_vid value
ETH_VLAN = 0x8100


def split_instructions(
    actions: tuple[Action, ...],
) -> tuple[tuple[Action, ...], WriteMetadata | None, GotoTable | None]:
    """(apply-actions, write-metadata, goto-table) of a flow entry's action list.

    OpenFlow runs instructions in a fixed order (apply-actions, write-metadata,
    goto-table), so the two instructions may only end the list, in that order.
    Raises ValueError otherwise, or if a group bucket's list holds one.
    """
    if _INSTRUCTIONS.isdisjoint(map(type, actions)):  # the usual list: actions only
        return tuple(actions), None, None
    apply = list(actions)
    goto: GotoTable | None = None
    meta: WriteMetadata | None = None
    if apply and isinstance(last := apply[-1], GotoTable):
        goto = last
        apply.pop()
    if apply and isinstance(last := apply[-1], WriteMetadata):
        meta = last
        apply.pop()
    if not _INSTRUCTIONS.isdisjoint(map(type, apply)):
        raise ValueError(f"instructions must end the action list: {actions}")
    return tuple(apply), meta, goto


class CookieKind(enum.IntEnum):
    BASE = 1  # table-miss, LLDP/ARP traps, multicast drop
    HOST_ROUTE = 2  # per-destination forwarding
    CLASS_TRAP = 3  # first packet of a policy-governed flow to the controller
    FLOW = 4  # exact rules of one placed flow
    JOB = 5  # pair rules of a declared job (flow id: the job's id, generation: its plan)


COOKIE_TAG = 0xFA  # top byte of every cookie this controller writes
_FLOW_TOP = (COOKIE_TAG << 8) | CookieKind.FLOW  # top 16 bits of a placed flow's cookie


@dataclass(frozen=True, order=True)
class Cookie:
    """64-bit cookie: tag(8) | kind(8) | flow id(32) | generation(16).

    The flow id names a placed flow, the generation its placement, so entries
    of an older placement are recognisable and removable by cookie alone.
    """

    kind: CookieKind
    flow_id: int = 0
    generation: int = 0

    def encode(self) -> int:
        return (
            (COOKIE_TAG << 56)
            | (int(self.kind) << 48)
            | ((self.flow_id & 0xFFFFFFFF) << 16)
            | (self.generation & 0xFFFF)
        )

    @staticmethod
    def of_flow(flow_id: int, generation: int) -> int:
        """``Cookie(CookieKind.FLOW, flow_id, generation).encode()`` without building the
        cookie (once per new flow)."""
        return (_FLOW_TOP << 48) | ((flow_id & 0xFFFFFFFF) << 16) | (generation & 0xFFFF)

    @classmethod
    def decode(cls, value: int) -> Cookie | None:
        """The cookie for ``value``, or None if this controller did not write it."""
        if value >> 56 != COOKIE_TAG:
            return None
        try:
            kind = CookieKind((value >> 48) & 0xFF)
        except ValueError:
            return None
        return cls(kind=kind, flow_id=(value >> 16) & 0xFFFFFFFF, generation=value & 0xFFFF)

    @staticmethod
    def flow_parts(value: int) -> tuple[int, int] | None:
        """``(flow id, generation)`` if ``value`` is a placed flow's cookie, else None:
        :meth:`decode` without building a cookie (every poll reads every placed
        flow's counters)."""
        if value >> 48 != _FLOW_TOP:
            return None
        return (value >> 16) & 0xFFFFFFFF, value & 0xFFFF

    # Mask that selects all entries of one flow, whatever the generation.
    FLOW_MASK = 0xFFFFFFFFFFFF0000


EntryKey = tuple[int, int, "Match"]  # (table_id, priority, match): unique per switch


@dataclass(frozen=True)
class FlowEntry:
    """One flow entry. ``ingress`` marks the entry whose change switches a flow's path
    (it is updated only after the rest of the new path is in place); it is metadata
    and not part of what the switch holds."""

    priority: int
    match: Match
    actions: tuple[Action, ...]
    cookie: int
    table_id: int = 0
    idle_timeout: int = 0
    hard_timeout: int = 0
    send_flow_removed: bool = False
    meter_id: int | None = None  # rate-limit through this meter before the actions
    ingress: bool = False
    # (table_id, priority, match), made once: every table holding this entry (the
    # desired, the reported and the switch's, on each switch that shares the entry)
    # keys it by this very tuple. Keys made per table were most of the heap at
    # 64 x 512 (2.9 million tuples for ~100,000 entries).
    key: EntryKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.table_id, self.priority, self.match))

    def same_on_switch(self, other: FlowEntry) -> bool:
        """Whether the switch would hold the same entry (ignores metadata)."""
        return (
            self.key == other.key
            and self.actions == other.actions
            and self.cookie == other.cookie
            and self.idle_timeout == other.idle_timeout
            and self.hard_timeout == other.hard_timeout
            and self.send_flow_removed == other.send_flow_removed
            and self.meter_id == other.meter_id
        )


class GroupType(enum.Enum):
    SELECT = "select"
    FAST_FAILOVER = "ff"
    ALL = "all"
    INDIRECT = "indirect"


@dataclass(frozen=True, order=True)
class Bucket:
    actions: tuple[Action, ...]
    weight: int = 0  # SELECT only
    watch_port: int | None = None  # FAST_FAILOVER liveness; also honoured by OVS SELECT
    watch_group: int | None = None  # FAST_FAILOVER liveness: live while that group is


@dataclass(frozen=True)
class GroupEntry:
    group_id: int
    type: GroupType
    buckets: tuple[Bucket, ...]

    @cached_property
    def watches_group(self) -> bool:
        """Whether a bucket's liveness is another group's (that one goes in first)."""
        return any(b.watch_group is not None for b in self.buckets)


@dataclass(frozen=True)
class MeterEntry:
    """A packets-per-second meter with one drop band (used to rate-limit packet-ins)."""

    meter_id: int
    rate_pps: int
    burst: int = 0
