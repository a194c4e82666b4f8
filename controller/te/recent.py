"""Load that the controller has committed but the counters do not show yet.

Port counters lag: a flow placed a moment ago carries no measured load, so two
flows placed in the same instant would both see an idle path and collide.
:class:`RecentLoad` remembers each recent placement's demand on its links (and
the load a move took *off* the old path, as a negative amount) for
``visibility_s`` seconds, by which time the measured rates include it.
:class:`LoadOverlay` layers further adjustments on top for "what if" scoring.

Both are read-only :class:`~collections.abc.Mapping` views for the strategies;
time only comes in as ``now``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Iterator, Mapping

import numpy as np

from controller.fabric.model import LinkId
from controller.routing.layout import LinkLayout

__all__ = ["RecentLoad", "LoadOverlay"]

# Amounts below this (bits/s) are float residue of adding and removing the same
# demand, not load; dropping them keeps the mapping from growing forever.
_RESIDUE_BPS = 1e-3


class RecentLoad(Mapping[LinkId, float]):
    """Per-link extra load (bits/s) of recent placements and moves, expiring on its own.

    The amounts live in a numpy array, one entry per link slot: slots of its
    own (growing as links appear) until :meth:`bind` ties it to a fabric
    state's :class:`~controller.routing.layout.LinkLayout`, whose arrays it
    then lines up with (:attr:`by_slot`). Links that layout does not know are
    kept aside, so nothing is lost when layouts change.
    """

    def __init__(self, *, visibility_s: float) -> None:
        if visibility_s < 0:
            raise ValueError(f"visibility_s must be >= 0, got {visibility_s}")
        self._visibility_s = visibility_s
        self._layout: LinkLayout | None = None
        self._index: dict[LinkId, int] | Mapping[LinkId, int] = {}
        self._values = np.zeros(64)
        self._other: dict[LinkId, float] = {}  # bound: links the layout does not know
        # Pending contributions, oldest first, in parallel queues (no object per
        # entry: these live for seconds, long enough to burden the collector).
        # Entry number ``self._first + i`` is the i-th of each queue.
        self._expiry: deque[float] = deque()
        self._entry_links: deque[tuple[LinkId, ...]] = deque()
        self._amount: deque[float] = deque()
        self._keys: deque[Hashable | None] = deque()
        self._slots: deque[tuple[int, ...]] = deque()
        self._first = 0
        self._by_key: dict[Hashable, int] = {}  # key -> entry number

    @property
    def visibility_s(self) -> float:
        return self._visibility_s

    @visibility_s.setter
    def visibility_s(self, seconds: float) -> None:
        """A new window for contributions added from now on (those counted keep theirs;
        after a shortening, one may outlive its window until those before it expire)."""
        if seconds < 0:
            raise ValueError(f"visibility_s must be >= 0, got {seconds}")
        self._visibility_s = seconds

    @property
    def live(self) -> Mapping[LinkId, float]:
        """The per-link amounts as a read-only mapping (this object: it changes as
        placements are added and expire)."""
        return self

    @property
    def layout(self) -> LinkLayout | None:
        """The layout :attr:`by_slot` is aligned to (None: slots of its own)."""
        return self._layout

    @property
    def by_slot(self) -> np.ndarray:
        """Amount per slot of the bound layout (do not modify)."""
        return self._values

    def bind(self, layout: LinkLayout) -> None:
        """Line the amounts up with ``layout``'s slots (a no-op if already bound to it)."""
        if layout is self._layout:
            return
        amounts = dict(self.items())
        self._layout = layout
        self._index = layout.index
        self._values = np.zeros(layout.size)
        self._other = {}
        for lid, bps in amounts.items():
            slot = layout.index.get(lid, -1)
            if slot >= 0:
                self._values[slot] = bps
            else:
                self._other[lid] = bps
        index = layout.index
        self._slots = deque(
            tuple(index.get(lid, -1) for lid in links) for links in self._entry_links
        )

    def slots_of(self, links: Iterable[LinkId]) -> tuple[int, ...]:
        """Slots of ``links`` (-1 for links kept aside), registering new ones if unbound."""
        index = self._index
        if self._layout is not None:
            return tuple(index.get(lid, -1) for lid in links)
        out = []
        for lid in links:
            slot = index.get(lid)
            if slot is None:
                slot = self._register(lid)
            out.append(slot)
        return tuple(out)

    def add(
        self, links: Iterable[LinkId], bps: float, *, now: float, key: Hashable | None = None
    ) -> None:
        """Count ``bps`` (negative: load removed) on ``links`` until ``now + visibility_s``.

        ``key`` (a flow id) lets :meth:`settle` correct the amount once measured.
        """
        links = tuple(links)
        if not links or bps == 0 or self._visibility_s == 0:
            return
        self.add_slots(links, self.slots_of(links), bps, now=now, key=key)

    def add_slots(
        self,
        links: tuple[LinkId, ...],
        slots: tuple[int, ...],
        bps: float,
        *,
        now: float,
        key: Hashable | None = None,
    ) -> None:
        """:meth:`add` for callers that know the links' slots (from :meth:`slots_of`
        or the bound layout)."""
        if not links or bps == 0 or self._visibility_s == 0:
            return
        self._apply(links, slots, bps)
        if key is not None:
            self._by_key[key] = self._first + len(self._expiry)
        self._expiry.append(now + self._visibility_s)
        self._entry_links.append(links)
        self._amount.append(bps)
        self._keys.append(key)
        self._slots.append(slots)

    def settle(self, key: Hashable) -> None:
        """A placement's rate has been measured: the counters show it now, so stop
        counting its estimate on top (which would count it twice, and make a flow
        estimated as an elephant but measured as a mouse reserve a whole link)."""
        number = self._by_key.pop(key, None)
        if number is None:
            return
        i = number - self._first
        amount = self._amount[i]
        if amount == 0:
            return
        self._apply(self._entry_links[i], self._slots[i], -amount)
        self._amount[i] = 0.0

    def expire(self, now: float) -> None:
        """Forget contributions whose time is up. ``now`` should not go backwards;
        if it does, entries simply expire a little late."""
        expiry = self._expiry
        while expiry and expiry[0] <= now:
            expiry.popleft()
            links, bps = self._entry_links.popleft(), self._amount.popleft()
            key = self._keys.popleft()
            slots = self._slots.popleft()
            if key is not None and self._by_key.get(key) == self._first:
                del self._by_key[key]
            self._first += 1
            self._apply(links, slots, -bps)

    def _apply(self, links: tuple[LinkId, ...], slots: tuple[int, ...], bps: float) -> None:
        values = self._values
        for lid, slot in zip(links, slots, strict=True):
            if slot >= 0:
                # Python floats, not numpy scalars: the same IEEE arithmetic, faster.
                value = values.item(slot) + bps
                values[slot] = 0.0 if -_RESIDUE_BPS < value < _RESIDUE_BPS else value
            else:
                value = self._other.get(lid, 0.0) + bps
                if abs(value) < _RESIDUE_BPS:
                    self._other.pop(lid, None)
                else:
                    self._other[lid] = value

    def _register(self, lid: LinkId) -> int:
        index = self._index
        assert isinstance(index, dict)
        slot = len(index)
        if slot >= len(self._values):
            self._values = np.concatenate([self._values, np.zeros(len(self._values))])
        index[lid] = slot
        return slot

    # Mapping protocol (``get`` is overridden because strategies call it in hot loops).
    def get(self, key: LinkId, default: float = 0.0) -> float:  # type: ignore[override]
        slot = self._index.get(key)
        if slot is None:
            return self._other.get(key, default)
        value = self._values[slot]
        return float(value) if value != 0.0 else default

    def __getitem__(self, key: LinkId) -> float:
        value = self.get(key, 0.0)
        if value == 0.0:
            raise KeyError(key)
        return value

    def _links(self) -> list[LinkId]:
        if self._layout is not None:
            links = self._layout.links
            found = [links[slot] for slot in np.flatnonzero(self._values)]
        else:
            by_slot = {slot: lid for lid, slot in self._index.items()}
            found = [by_slot[int(slot)] for slot in np.flatnonzero(self._values)]
        return [lid for lid in found if lid is not None] + list(self._other)

    def __iter__(self) -> Iterator[LinkId]:
        return iter(self._links())

    def __len__(self) -> int:
        return int(np.count_nonzero(self._values)) + len(self._other)


class LoadOverlay(Mapping[LinkId, float]):
    """``base`` plus per-link adjustments, without copying ``base``."""

    def __init__(self, base: Mapping[LinkId, float], *deltas: Mapping[LinkId, float]) -> None:
        self._base = base
        self._deltas = deltas

    def get(self, key: LinkId, default: float = 0.0) -> float:  # type: ignore[override]
        value = self._base.get(key, default)
        for delta in self._deltas:
            value += delta.get(key, 0.0)
        return value

    def __getitem__(self, key: LinkId) -> float:
        if key not in self._base and not any(key in d for d in self._deltas):
            raise KeyError(key)
        return self.get(key)

    def __iter__(self) -> Iterator[LinkId]:
        seen = set(self._base)
        for delta in self._deltas:
            seen.update(delta)
        return iter(seen)

    def __len__(self) -> int:
        return sum(1 for _ in self)
