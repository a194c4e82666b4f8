"""Time as the daemon reads it: monotonic for the engine, wall time for what users see."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Clock"]


@dataclass(frozen=True)
class Clock:
    mono: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time

    def wall_offset(self) -> float:
        """What turns a monotonic instant into wall time now: ``t + wall_offset()``
        (an instant of 0 means "never" and stays 0: see ``snapshot.flow_views``)."""
        return self.wall() - self.mono()
