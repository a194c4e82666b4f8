"""Decide when a directed link is congested, with hysteresis so it does not flap.

A link turns congested when its utilization is above ``threshold`` for
``samples`` consecutive observations, and clears only when it is below
``clear_threshold`` for ``samples`` consecutive observations; values between
the two keep the current state and break any streak. The detector only
reports state changes as :class:`CongestionEvent` values; it does not decide
what to move, and it never reads a clock (``now`` comes in with each
observation). Each direction of a cable is judged on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.errors import InvalidArgument
from controller.fabric.model import LinkId

__all__ = ["CongestionDetector", "CongestionEvent"]


@dataclass(frozen=True)
class CongestionEvent:
    """``link`` became congested (``congested=True``) or cleared, at ``time``."""

    link: LinkId
    congested: bool
    utilization: float
    time: float


@dataclass
class _LinkState:
    congested: bool = False
    streak: int = 0  # consecutive observations pointing at the other state
    last_time: float = -math.inf


class CongestionDetector:
    """Hysteresis over per-link utilization samples (ratios, 1.0 = line rate)."""

    def __init__(
        self, *, threshold: float = 0.8, clear_threshold: float = 0.6, samples: int = 2
    ) -> None:
        if not (math.isfinite(threshold) and 0.0 < threshold <= 1.0):
            raise InvalidArgument("threshold", f"must be in (0, 1], got {threshold!r}")
        if not (math.isfinite(clear_threshold) and 0.0 < clear_threshold < threshold):
            raise InvalidArgument(
                "clear_threshold",
                f"must be above 0 and below threshold {threshold!r}, got {clear_threshold!r}",
            )
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise InvalidArgument("samples", f"must be an integer >= 1, got {samples!r}")
        self.threshold = threshold
        self.clear_threshold = clear_threshold
        self.samples = samples
        self._links: dict[LinkId, _LinkState] = {}
        self._rising: set[LinkId] = set()  # the links rising() is true of, kept on observe

    def observe(self, link: LinkId, utilization: float, now: float) -> CongestionEvent | None:
        """Feed one utilization sample of ``link``; return an event if its state flipped.

        Pass the time of the rate sample as ``now``: an observation not newer
        than the link's previous one is the same sample seen again (e.g. the
        loads were recomputed after another switch's stats) and is ignored,
        so it cannot shorten the ``samples`` streak.
        """
        if not math.isfinite(utilization) or utilization < 0.0:
            raise InvalidArgument(
                "utilization", f"must be a finite ratio >= 0, got {utilization!r}"
            )
        state = self._links.setdefault(link, _LinkState())
        if now <= state.last_time:
            return None
        state.last_time = now
        if state.congested:
            toward_other = utilization < self.clear_threshold
        else:
            toward_other = utilization > self.threshold
        state.streak = state.streak + 1 if toward_other else 0
        if state.streak < self.samples:
            if state.streak and not state.congested:
                self._rising.add(link)
            else:
                self._rising.discard(link)
            return None
        state.congested = not state.congested
        state.streak = 0
        self._rising.discard(link)
        return CongestionEvent(
            link=link, congested=state.congested, utilization=utilization, time=now
        )

    def rising(self, link: LinkId) -> bool:
        """``link`` is clear but its last samples were above ``threshold``: one or
        more further samples decide. The caller may sample it sooner than usual
        to confirm (or dismiss) a hot spot quickly."""
        return link in self._rising

    def rising_links(self) -> frozenset[LinkId]:
        """Every link :meth:`rising` is true of (a few, where a sweep would read all)."""
        return frozenset(self._rising)

    def is_congested(self, link: LinkId) -> bool:
        state = self._links.get(link)
        return state is not None and state.congested

    def congested(self) -> frozenset[LinkId]:
        """Every link currently judged congested."""
        return frozenset(lid for lid, st in self._links.items() if st.congested)

    def forget(self, link: LinkId) -> None:
        """Drop ``link``'s state (it went down): when it returns it starts clear,
        and no event is emitted for its disappearance."""
        self._links.pop(link, None)
        self._rising.discard(link)
