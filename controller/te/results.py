"""What the traffic engineer reports back: placements, moves and reaction outcomes.

Plain frozen values handed from the hub to the flow programmer, the event
stream and the metrics; nothing here changes state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from controller.fabric.model import LinkId, Path
from controller.policy.model import Policy, Strategy
from controller.te.flowtable import TrackedFlow

__all__ = ["Placement", "Move", "Outcome", "MOVE_REASONS", "routing_identity"]

MOVE_REASONS = frozenset({"congestion", "failure", "drain", "policy", "rebalance"})


@dataclass(frozen=True)
class Placement:
    flow: TrackedFlow
    created: bool  # False: the 5-tuple was already placed and ``flow`` is that placement
    strategy: Strategy  # the strategy that chose (a pinned policy's fallback if it fell back)
    reason: str


@dataclass(frozen=True)
class Move:
    """A flow changed path; program ``new_path`` under ``generation``, then remove the old."""

    flow_id: int
    old_path: Path
    new_path: Path
    reason: str  # one of MOVE_REASONS
    generation: int
    detail: str = ""


@dataclass(frozen=True)
class Outcome:
    """What a reaction did. Iterating or ``len()`` goes over ``moves``."""

    moves: tuple[Move, ...] = ()
    stranded: tuple[int, ...] = ()  # on a down link with no surviving path: left in place
    stuck: tuple[int, ...] = ()  # should leave a hot or drained link but nothing fits
    held: tuple[int, ...] = ()  # kept by min_move_interval_s (rebalance)
    hot: tuple[LinkId, ...] = ()  # links found above threshold (rebalance)

    def __iter__(self) -> Iterator[Move]:
        return iter(self.moves)

    def __len__(self) -> int:
        return len(self.moves)


def routing_identity(policy: Policy) -> tuple[object, ...]:
    """What of a policy decides paths (a new version with only a new description does not)."""
    return (
        policy.name,
        policy.strategy,
        policy.params,
        policy.weights,
        policy.pinned_path,
        policy.fallback,
    )
