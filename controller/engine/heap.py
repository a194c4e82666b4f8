"""When the hub asks the garbage collector to freeze or to collect (``EngineOutput.heap``).

Flows, paths and tables live long and hold no cycles; a collector that walks
all of them again and again costs the hub much of its setup rate. So once per
poll interval the hub freezes what is alive (``gc.freeze()``), and every
``collect_s`` it unfreezes, collects and freezes again (reclaiming cycles that
became garbage after they were frozen).

A poll round's replies replace one rate sample and one flow record per placed
flow: objects made *after* the tick's freeze. Left in the collector's sight
until the next round, they are walked by every older-generation collection
that new-flow setups trigger, a cost that grows with the number of flows. So
the round that froze is frozen once more when the last of its stats replies is
in.

Pure: time comes in as an argument. The shim's hub loop (and the engine
driver, playing the shim) carries the answers out with
:func:`controller.southbound.collector.tend_heap`.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.engine.outputs import FlowStatsRequest, HeapWork, PortStatsRequest, Request
from controller.fabric.model import Dpid

__all__ = ["HeapPolicy"]


class HeapPolicy:
    def __init__(self, *, enabled: bool, interval_s: float, collect_s: float, now: float) -> None:
        self.enabled = enabled
        self.interval_s = interval_s
        self.collect_s = collect_s
        self._next_freeze = now  # the first tick freezes what startup built
        self._next_collect = now + collect_s
        # Stats replies still due from the round that froze: (kind, switch).
        self._awaiting: set[tuple[str, Dpid]] = set()

    def collect_soon(self, now: float) -> None:
        """Much was left behind (a rebuilt engine): a full collection at the next round."""
        self._next_collect = min(self._next_collect, now)

    def tick(self, now: float, requests: Iterable[Request] = ()) -> HeapWork | None:
        """At most once per poll interval: freeze (or, rarely, collect); ``requests``:
        the stats requests of this tick, whose replies end the round."""
        if not self.enabled or now < self._next_freeze:
            return None
        self._next_freeze = now + self.interval_s
        self._awaiting = {
            ("port" if isinstance(req, PortStatsRequest) else "flow", req.dpid)
            for req in requests
            if isinstance(req, PortStatsRequest | FlowStatsRequest)
        }
        if now >= self._next_collect:
            self._next_collect = now + self.collect_s
            return "collect"
        return "freeze"

    def answered(self, kind: str, dpid: Dpid) -> HeapWork | None:
        """The last part of a ``kind`` ("port" or "flow") stats reply from ``dpid`` is
        in: "freeze" once every reply of the round that froze has arrived."""
        if not self._awaiting:
            return None
        self._awaiting.discard((kind, dpid))
        return None if self._awaiting else "freeze"
