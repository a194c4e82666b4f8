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
"""

from __future__ import annotations

import gc

__all__ = ["MIDDLE_THRESHOLD", "tend_heap"]

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
