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
from typing import Protocol

from controller.engine.outputs import FlowStatsRequest, PortStatsRequest, Request
from controller.fabric.model import Dpid
from controller.flowprog.flowrules import FLOW_COOKIE_MASK, FLOW_KIND_COOKIE

__all__ = [
    "Paced",
    "paced_interval",
    "Poller",
    "PortStatsPoller",
    "FlowStatsPoller",
    "StatsPolls",
    "PollResult",
]


@dataclass(frozen=True)
class PollResult:
    """What a poll round asks for, and the switches that failed to answer in time."""

    requests: tuple[Request, ...] = ()
    unanswered: tuple[Dpid, ...] = ()


class Paced(Protocol):
    configured: float  # the interval asked for
    interval: float  # the one in use
    budget: float  # the share of the hub's time the periodic work may take
    max_interval: float


def paced_interval(pace: Paced, round_work: float) -> float:
    """The interval that keeps a round of ``round_work`` seconds within ``pace``'s
    budget, between its configured and longest intervals; the one in use when the
    change is under 10 % (not worth a new schedule). Polls and LLDP probes."""
    want = min(pace.max_interval, max(pace.configured, round_work / pace.budget))
    if want == pace.configured or abs(want - pace.interval) > 0.1 * pace.interval:
        return want
    return pace.interval


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
    """Port counters from every switch; flow counters from ingress switches of placed flows.

    Reading the answers costs the hub time that grows with the fabric (every
    port of every switch, every placed flow): at 64 x 512 with 100,000 flows a
    round is more than a second of work. The hub reports what each answer cost
    (:meth:`work`); once a round's worth of answers is in, the interval becomes
    what keeps that work within ``budget`` of the hub's time, never shorter
    than the configured one nor longer than ``max_interval``.
    """

    def __init__(
        self,
        *,
        interval: float,
        rng: random.Random,
        budget: float = 1.0,
        max_interval: float | None = None,
    ) -> None:
        if not 0 < budget <= 1:
            raise ValueError(f"budget must be in (0, 1], got {budget}")
        self.configured = interval
        self.interval = interval  # the interval in use: configured, or stretched
        self.budget = budget
        self.max_interval = max(interval, max_interval if max_interval is not None else interval)
        self.port = PortStatsPoller(interval=interval)
        self.flow = FlowStatsPoller(interval=interval)
        self._rng = rng
        self._next: dict[Dpid, float] = {}
        self._work = 0.0  # seconds the hub spent on answers since the last estimate
        self._answers = 0  # port-stats answers among them (one per switch and round)
        self.round_work = 0.0  # the last estimate of one round's work (seconds)

    def work(self, seconds: float, *, port: bool) -> None:
        """The hub spent ``seconds`` on one answer (a whole port-stats reply: ``port``)."""
        self._work += seconds
        self._answers += port

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
        self._adapt(len(live))
        return PollResult(tuple(requests), tuple(unanswered))

    def _adapt(self, switches: int) -> None:
        """With a round's worth of answers in: the interval that keeps a round's work
        within the budget (changes under 10 % are not worth a new schedule)."""
        if switches == 0 or self._answers < switches:
            return
        self.round_work = self._work / self._answers * switches
        self._work, self._answers = 0.0, 0
        want = paced_interval(self, self.round_work)
        self.interval = self.port.interval = self.flow.interval = want

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
