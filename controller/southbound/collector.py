"""What the shim does with the engine's garbage-collector policy (``EngineOutput.heap``).

The engine decides when (:class:`controller.engine.heap.HeapPolicy`); this
carries it out on the interpreter's collector, for the hub loop and for the
engine driver that plays the shim in tests and benchmarks.

Besides freezing, the middle generation is collected every
``MIDDLE_THRESHOLD`` young collections instead of CPython's 10: what survives a
young collection in the controller is mostly long-lived (flows, rules, host
routes) and is frozen at the next poll round anyway, so collecting the middle
generation often only walks each survivor once more. In a large heap (64 x 512,
100,000 flows: 1.4 GiB) that walk costs a cache miss per reference, ~7 us of a
~250 us flow setup. Short-lived cycles still die young; cycles frozen before
they were collected wait for the policy's periodic full collection, as before.

A reaction to a failure (a switch or a port lost) runs with the collector
paused (:func:`failure_reaction`): it makes a burst of long-lived objects (every
leaf's new forwarding, the moved flows' rules) while traffic waits for it, and
the young and middle collections it triggered walked them again and again
(at 64 x 512 with 100,000 flows, ~0.2 s of a lost spine's ~1 s). What it leaves
is frozen right after, as the next poll round would have done; the engine
makes no reference cycles there (full collections found none after 100,000
setups at 64 x 512, nor after a host learned, a lost uplink and a lost spine
at 8 x 32), so nothing waits for the periodic collection.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["MIDDLE_THRESHOLD", "failure_reaction", "tend_heap"]

MIDDLE_THRESHOLD = 100  # young collections per middle-generation collection


def tend_heap(work: str | None) -> None:
    """Do what the policy asked: "freeze" what is alive now out of the collector's
    walks; "collect": unfreeze, collect everything, freeze again."""
    if work is None:
        return
    if work == "collect":
        gc.unfreeze()
        gc.collect()
    young, _middle, old = gc.get_threshold()
    gc.set_threshold(young, MIDDLE_THRESHOLD, old)
    gc.freeze()


@contextmanager
def failure_reaction(policy_on: bool) -> Iterator[None]:
    """Run the engine's reaction to a failure with the collector paused, then freeze
    what it left (``policy_on``: the engine's collector policy is on; else, and when
    the collector is off already, nothing changes). The collector is back on after,
    also when the reaction raises."""
    if not policy_on or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
