"""When rebalancing rounds run: every period, and retries while congestion waits.

A round can only move flows it knows to collide: measured (until its first
flow-stats sample a new flow counts at its whole demand, so a link shared
with it does not look contended), free to move (a flow stays put for
``min_move_interval_s`` after it was placed or moved,
:func:`controller.te.rebalance.hold_down`), on a link the planner's smoothed
load shows hot (it can lag the sample that raised the congestion event). New
flows that collide therefore meet a congestion round that cannot act yet, and
the repair would wait for the next periodic round, up to a whole period
after it became possible. :class:`RoundSchedule` books a *retry*, a
congestion round over the links still congested, for when it can act:

- a congestion event's round saw no hot link: once the next port poll has
  answered (:data:`LAG_POLLS` intervals: polls are jittered by up to 10%);
- a round left flows held on hot links: when the last of them may move (one
  round then sees them all, as the joint re-placement needs).

Flows are measured by the poll rounds that read the ports (their ingress
switch's flow counters ride along), so the retry after the next poll also
finds flows measured that were not yet at the event. Retries keep at least
one poll interval (:attr:`RoundSchedule.gap`) after the previous scheduled
round, and only these causes book them: a round stuck with nothing that fits
books nothing (the periodic round tries again), so a lasting hot spot does
not cost a round per poll.

Pure bookkeeping: time only comes in as ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.te.engineer import TrafficEngineer
from controller.te.rebalance import hold_down

__all__ = ["LAG_POLLS", "RoundSchedule", "releases"]

LAG_POLLS = 1.25


def releases(te: TrafficEngineer, flow_ids: Iterable[int], *, now: float) -> list[float]:
    """When each of ``flow_ids`` may move next: the end of its hold-down, or ``now``."""
    out = []
    for flow_id in flow_ids:
        flow, policy = te.flow(flow_id), te.policy_of(flow_id)
        if flow is not None and policy is not None:
            out.append(max(now, flow.settled_at + hold_down(flow, policy)))
    return out


class RoundSchedule:
    """Due times of the periodic round and of a retry (seconds, the engine's clock)."""

    def __init__(self, *, gap: float = 0.5) -> None:
        self.next_at = 0.0  # the periodic round; the first tick runs one
        self.retry_at: float | None = None
        self.last_at = float("-inf")  # the last scheduled round
        self.gap = gap  # a retry's least distance from the last round: a poll interval

    def due(self, now: float, period: float) -> str | None:
        """Which round runs now ("periodic", "retry" or None), booking the next."""
        if now >= self.next_at:
            self.next_at, self.retry_at, self.last_at = now + period, None, now
            return "periodic"
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at, self.last_at = None, now
            return "retry"
        return None

    def retry(self, when: Iterable[float], *, lag_from: float | None = None) -> float | None:
        """Book a retry when the last of ``when`` has come (and :attr:`gap` after the
        last scheduled round; with ``lag_from``, once the poll after it has
        answered), unless the periodic round comes first. Returns the booked time."""
        at = max(when, default=None)
        if lag_from is not None:
            polled = lag_from + LAG_POLLS * self.gap
            at = polled if at is None else max(at, polled)
        if at is None:
            return None
        at = max(at, self.last_at + self.gap)
        if at >= self.next_at:
            return None
        self.retry_at = at if self.retry_at is None else min(self.retry_at, at)
        return self.retry_at
