"""Statistics polls: when to ask each switch for port and flow counters.

One small class per kind of poll. A poller knows its interval, when each
switch is next due (jittered, so switches are not polled in lockstep), which
requests are outstanding and how long answers took. It never piles up
requests on a switch that does not answer: an unanswered request blocks the
next one for a while, then counts as a failure. Scheduling across pollers
(which switches, which tick) is :class:`StatsPolls`'s job.

Pure: time and randomness come in as arguments; nothing is sent from here.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from controller.engine.outputs import FlowStatsRequest, PortStatsRequest, Request
from controller.fabric.model import Dpid
from controller.flowprog.flowrules import FLOW_COOKIE_MASK, FLOW_KIND_COOKIE

__all__ = ["Poller", "PortStatsPoller", "FlowStatsPoller", "StatsPolls", "PollResult"]


@dataclass(frozen=True)
class PollResult:
    """What a poll round asks for, and the switches that failed to answer in time."""

    requests: tuple[Request, ...] = ()
    unanswered: tuple[Dpid, ...] = ()


class Poller:
    """Outstanding requests of one kind, and answer times."""

    kind = ""

    def __init__(self, *, interval: float) -> None:
        self.interval = interval
        self._sent: dict[Dpid, float] = {}

    def request(self, dpid: Dpid) -> Request:  # pragma: no cover - abstract
        raise NotImplementedError

    def blocked(self, dpid: Dpid, now: float) -> bool:
        """A request to ``dpid`` is outstanding and still young enough to wait for."""
        sent = self._sent.get(dpid)
        return sent is not None and now - sent < self.give_up_after

    @property
    def give_up_after(self) -> float:
        return 3 * self.interval + 2.0

    def overdue(self, dpid: Dpid) -> bool:
        return dpid in self._sent

    def sent(self, dpid: Dpid, now: float) -> Request:
        self._sent[dpid] = now
        return self.request(dpid)

    def answered(self, dpid: Dpid, now: float, *, more: bool) -> float | None:
        """A reply (part) arrived: the round-trip time once the last part is in."""
        if more:
            return None
        sent = self._sent.pop(dpid, None)
        return None if sent is None else now - sent

    def forget(self, dpid: Dpid) -> None:
        self._sent.pop(dpid, None)


class PortStatsPoller(Poller):
    kind = "port"

    def request(self, dpid: Dpid) -> Request:
        return PortStatsRequest(dpid)


class FlowStatsPoller(Poller):
    """Counters of placed flows' ingress rules (selected by cookie)."""

    kind = "flow"

    def request(self, dpid: Dpid) -> Request:
        return FlowStatsRequest(dpid, cookie=FLOW_KIND_COOKIE, mask=FLOW_COOKIE_MASK)


class StatsPolls:
    """Port counters from every switch; flow counters from ingress switches of placed flows."""

    def __init__(self, *, interval: float, rng: random.Random) -> None:
        self.interval = interval
        self.port = PortStatsPoller(interval=interval)
        self.flow = FlowStatsPoller(interval=interval)
        self._rng = rng
        self._next: dict[Dpid, float] = {}

    def due(self, *, now: float, switches: Iterable[Dpid], ingress: set[Dpid]) -> PollResult:
        requests: list[Request] = []
        unanswered: list[Dpid] = []
        live = set(switches)
        for dpid in sorted(live):
            due = self._next.setdefault(dpid, now + self._rng.uniform(0, self.interval))
            if now < due:
                continue
            self._next[dpid] = now + self.interval * self._rng.uniform(0.9, 1.1)
            if self.port.blocked(dpid, now):
                continue  # previous request still unanswered: do not pile up
            if self.port.overdue(dpid):
                unanswered.append(dpid)
            requests.append(self.port.sent(dpid, now))
            if dpid in ingress:  # the switch is the ingress of placed flows: their rates
                requests.append(self.flow.sent(dpid, now))
        for dpid in [d for d in self._next if d not in live]:
            self.forget(dpid)
        return PollResult(tuple(requests), tuple(unanswered))

    def expedite(self, dpid: Dpid, at: float) -> None:
        """Poll ``dpid`` no later than ``at`` (to confirm a sample quickly)."""
        if dpid in self._next:
            self._next[dpid] = min(self._next[dpid], at)

    def next_due(self) -> float | None:
        return min(self._next.values(), default=None)

    def forget(self, dpid: Dpid) -> None:
        self._next.pop(dpid, None)
        self.port.forget(dpid)
        self.flow.forget(dpid)
