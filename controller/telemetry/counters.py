"""Port counters as a switch reports them: one immutable snapshot per port.

A :class:`PortCounters` is the raw, cumulative OpenFlow port-stats reply for
one port, already translated out of Ryu's message objects by the shim. It is
a value and nothing more: it does not know when it was taken (the caller
passes ``now`` alongside it), it does not compute rates (that is
:mod:`controller.telemetry.rates`), and it never reads a switch or a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from controller.errors import InvalidArgument

__all__ = ["COUNTER_MAX", "UNSUPPORTED", "PortCounters"]

# OpenFlow port counters are unsigned 64-bit integers.
COUNTER_MAX = 2**64 - 1
# OpenFlow 1.3 (7.3.5.6): a switch sets a counter it does not support to all ones.
# It is a marker, not a count, so the exporter must not publish it as one.
UNSUPPORTED = COUNTER_MAX


@dataclass(frozen=True)
class PortCounters:
    """Cumulative counters of one switch port (OpenFlow ``ofp_port_stats``)."""

    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0
    rx_dropped: int = 0
    tx_dropped: int = 0
    rx_errors: int = 0
    tx_errors: int = 0

    def __post_init__(self) -> None:
        for name in _NAMES:  # every port of every switch, every poll: no fields() call
            value = getattr(self, name)
            # bool is an int subclass; a True "counter" is always a caller bug.
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidArgument(name, f"must be an integer, not {value!r}")
            if not 0 <= value <= COUNTER_MAX:
                raise InvalidArgument(name, f"{value} is outside the unsigned 64-bit range")

    def supported(self, name: str) -> bool:
        """False if the switch marked counter ``name`` as unsupported (all ones)."""
        value: int = getattr(self, name)
        return value != UNSUPPORTED


_NAMES = tuple(f.name for f in fields(PortCounters))
