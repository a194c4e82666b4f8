"""Read models of many items, each built when a reader asks for it.

A fabric of 64 x 512 has 65,536 link directions and may carry 100,000 placed
flows. Building a view object for every one of them each time the hub
publishes (every tick and every command) took the hub ~1.5 s per publish at
that size, more than the tick it ran in. The hub now publishes the immutable
inputs instead: the items (link ids, tracked flows: frozen values) and a pure
function of values captured at publish time. A reader (an API call, a
Prometheus scrape) builds the views it reads, in its own thread, and sees
exactly what it would have seen had the hub built them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar, overload

__all__ = ["Derived"]

K = TypeVar("K")
V = TypeVar("V")


class Derived(Sequence[V], Generic[K, V]):
    """``make(item)`` for each of ``items``, built on every read (nothing is cached:
    ``make`` must read only immutable values, never hub-owned state)."""

    __slots__ = ("_items", "_make")

    def __init__(self, items: Sequence[K], make: Callable[[K], V]) -> None:
        self._items = items
        self._make = make

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> V: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[V, ...]: ...

    def __getitem__(self, index: int | slice) -> V | tuple[V, ...]:
        if isinstance(index, slice):
            return tuple(map(self._make, self._items[index]))
        return self._make(self._items[index])

    def __iter__(self) -> Iterator[V]:
        return map(self._make, self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Derived({len(self._items)} items)"
