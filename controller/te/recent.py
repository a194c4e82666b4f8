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
from typing import Any

from controller.fabric.model import LinkId

__all__ = ["RecentLoad", "LoadOverlay"]

# Amounts below this (bits/s) are float residue of adding and removing the same
# demand, not load; dropping them keeps the mapping from growing forever.
_RESIDUE_BPS = 1e-3


class RecentLoad(Mapping[LinkId, float]):
    """Per-link extra load (bits/s) of recent placements and moves, expiring on its own."""

    def __init__(self, *, visibility_s: float) -> None:
        if visibility_s < 0:
            raise ValueError(f"visibility_s must be >= 0, got {visibility_s}")
        self._visibility_s = visibility_s
        self._extra: dict[LinkId, float] = {}
        # [expiry, links, amount, key]: lists so that settle() can shrink an amount.
        self._pending: deque[list[Any]] = deque()
        self._by_key: dict[Hashable, list[Any]] = {}

    @property
    def visibility_s(self) -> float:
        return self._visibility_s

    @property
    def live(self) -> Mapping[LinkId, float]:
        """The per-link amounts as a plain read-only mapping (C-speed lookups for the
        strategies' inner loops); it changes as placements are added and expire."""
        return self._extra

    def add(
        self, links: Iterable[LinkId], bps: float, *, now: float, key: Hashable | None = None
    ) -> None:
        """Count ``bps`` (negative: load removed) on ``links`` until ``now + visibility_s``.

        ``key`` (a flow id) lets :meth:`settle` correct the amount once measured.
        """
        links = tuple(links)
        if not links or bps == 0 or self._visibility_s == 0:
            return
        self._apply(links, bps)
        entry = [now + self._visibility_s, links, bps, key]
        self._pending.append(entry)
        if key is not None:
            self._by_key[key] = entry

    def settle(self, key: Hashable) -> None:
        """A placement's rate has been measured: the counters show it now, so stop
        counting its estimate on top (which would count it twice, and make a flow
        estimated as an elephant but measured as a mouse reserve a whole link)."""
        entry = self._by_key.pop(key, None)
        if entry is None or entry[2] == 0:
            return
        self._apply(entry[1], -entry[2])
        entry[2] = 0.0

    def expire(self, now: float) -> None:
        """Forget contributions whose time is up. ``now`` should not go backwards;
        if it does, entries simply expire a little late."""
        pending = self._pending
        while pending and pending[0][0] <= now:
            entry = pending.popleft()
            _, links, bps, key = entry
            if key is not None and self._by_key.get(key) is entry:
                del self._by_key[key]
            self._apply(links, -bps)

    def _apply(self, links: tuple[LinkId, ...], bps: float) -> None:
        extra = self._extra
        for lid in links:
            value = extra.get(lid, 0.0) + bps
            if abs(value) < _RESIDUE_BPS:
                extra.pop(lid, None)
            else:
                extra[lid] = value

    # Mapping protocol (``get`` is overridden because strategies call it in hot loops).
    def get(self, key: LinkId, default: float = 0.0) -> float:  # type: ignore[override]
        return self._extra.get(key, default)

    def __getitem__(self, key: LinkId) -> float:
        return self._extra[key]

    def __iter__(self) -> Iterator[LinkId]:
        return iter(self._extra)

    def __len__(self) -> int:
        return len(self._extra)


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
