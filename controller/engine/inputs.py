"""Plain data the shim decodes from OpenFlow replies before handing them to the engine."""

from __future__ import annotations

from dataclasses import dataclass

from controller.flowprog.entries import FlowEntry

__all__ = ["FlowStat", "SwitchError"]


@dataclass(frozen=True)
class FlowStat:
    """One entry of a flow-stats reply: the entry as the switch holds it, and its bytes."""

    entry: FlowEntry
    byte_count: int


@dataclass(frozen=True)
class SwitchError:
    """An OFPT_ERROR: ``kind`` is the error type's short name ("bad_request", ...)."""

    kind: str
    code: int
    xid: int
