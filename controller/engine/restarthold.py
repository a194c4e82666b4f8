"""Default forwarding held over a cold restart until discovery has found the fabric.

A controller that restarts finds its switches still holding what it programmed
before (they run fail-secure and the warm-up keeps what they report). Compiled
switch by switch and link by link as discovery finds them, default forwarding
would pass through partial next-hop sets on its way back to what the switches
hold: every leaf's routes renamed for each spine found, 11,136 flow adds and as
many deletes on 8 x 32 for a restart that changes nothing. So when a switch
read among the first (see :class:`RestartHold`) reports host routes of this
controller, forwarding is held and compiled once: a few probe intervals after
the last switch was read (its links are found by then), at the latest ``cap_s``
after the first read. A first start (no host routes of ours anywhere) is not
held: nothing would forward meanwhile.
"""

from __future__ import annotations

from controller.flowprog.entries import Cookie, CookieKind
from controller.flowprog.tables import SwitchTable

__all__ = ["QUIET_INTERVALS", "RestartHold"]

# Probe intervals after the last switch was read before the hold ends: one round
# to probe its ports, one for the answers, and one of margin for pacing.
QUIET_INTERVALS = 3.0


def holds_host_routes(table: SwitchTable) -> bool:
    """Whether a switch reported default-forwarding routes this controller wrote."""
    cookies = (Cookie.decode(entry.cookie) for entry in table.flows.values())
    return any(c is not None and c.kind is CookieKind.HOST_ROUTE for c in cookies)


class RestartHold:
    """Decides, on the switches' first reads, whether a cold restart holds forwarding,
    and when that hold ends. ``enabled`` false: never (a takeover holds on its own).

    A switch that reports no host route does not decide: a spine that lost every
    link before the restart holds none, and may be read before the leaves that do.
    A read reporting host routes starts the hold while the switches are still
    being read as they connect (no quiet of :data:`QUIET_INTERVALS` since the
    last read, within ``cap_s`` of the first); none by then, it is a first start
    (a switch reconnecting later is not a restart of this controller)."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.until: float | None = None  # when the hold ends (None: not holding)
        self._cap = 0.0
        self._first: float | None = None  # when the first switch was read
        self._quiet_from = 0.0  # when the reads so far have been quiet long enough
        self._decided = not enabled

    def switch_read(self, table: SwitchTable, *, now: float, interval: float, cap_s: float) -> bool:
        """A switch's first read finished (``interval``: the probe interval now).
        True when the hold starts with it."""
        quiet = now + QUIET_INTERVALS * interval
        if self.until is not None:
            self.until = min(self._cap, max(self.until, quiet))
            return False
        if self._decided:
            return False
        if self._first is None:
            self._first = now
        elif now >= min(self._quiet_from, self._first + cap_s):
            self._decided = True  # no host route of ours read in time: a first start
            return False
        if not holds_host_routes(table):
            self._quiet_from = quiet
            return False
        self._decided = True
        self._cap = self._first + cap_s
        self.until = min(self._cap, quiet)
        return True

    def due(self, now: float) -> bool:
        """Whether the hold ends now (true once per hold)."""
        if self.until is None or now < self.until:
            return False
        self.until = None
        return True
