"""The controller's budget for new-flow setups: a token bucket.

A burst of new 5-tuples beyond the budget is shed (counted as ``shed``, not
placed), so a storm of first packets cannot starve the hub.
"""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """Controller-side budget for new-flow setups (bursts of new 5-tuples are shed)."""

    def __init__(self, rate: float, *, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self.tokens = self.capacity
        self.last = 0.0

    def take(self, now: float) -> bool:
        if self.rate <= 0:
            return True
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
