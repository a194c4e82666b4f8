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

    def to_wall(self, mono_t: float) -> float:
        """The wall time of a monotonic instant (0 stays 0: "never")."""
        return self.wall() - (self.mono() - mono_t) if mono_t else 0.0
