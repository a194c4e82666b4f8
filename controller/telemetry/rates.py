"""Turn cumulative port counters into smoothed bit and packet rates.

:class:`RateEstimator` keeps, per port, the last counters it accepted and an
exponentially weighted moving average of the rates between successive
samples. It is fed by the hub each time a port-stats reply arrives, with the
time the hub read (``now``); it never reads a clock, never talks to a switch
and never guesses: a sample it cannot trust (no earlier baseline, time not
moving forward, a counter that went backwards, an impossible jump) yields no
rate rather than a wrong one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from controller.errors import InvalidArgument
from controller.fabric.model import Dpid, PortNo, PortRef
from controller.telemetry.counters import PortCounters

__all__ = ["DEFAULT_MAX_BPS", "PortRate", "PortState", "RateEstimator"]

# Faster than any port a leaf-spine fabric of today has (400GbE); a rate above
# it can only come from a bogus counter, e.g. one a switch restarted mid-poll.
DEFAULT_MAX_BPS = 400e9


@dataclass(frozen=True)
class PortRate:
    """Smoothed rates of one port, as of ``time`` (the ``now`` of the last sample)."""

    tx_bps: float
    rx_bps: float
    tx_pps: float
    rx_pps: float
    time: float


class PortState:
    """What the estimator holds of one port: the last counters accepted as a
    baseline, when they were read, and the latest smoothed and raw rates (None
    until two samples made one). Read-only outside the estimator."""

    __slots__ = ("counters", "rate", "raw", "time")

    def __init__(self, counters: PortCounters, time: float) -> None:
        self.counters = counters
        self.time = time
        self.rate: PortRate | None = None
        self.raw: PortRate | None = None


class RateEstimator:
    """EWMA of per-port rates from successive counter snapshots.

    ``alpha`` is the weight of the newest sample: ``1.0`` reports raw rates,
    smaller values smooth more. ``max_bps`` bounds a believable rate in either
    direction; a sample above it is discarded.
    """

    def __init__(self, *, alpha: float = 0.5, max_bps: float = DEFAULT_MAX_BPS) -> None:
        if not (math.isfinite(alpha) and 0.0 < alpha <= 1.0):
            raise InvalidArgument("alpha", f"must be in (0, 1], got {alpha!r}")
        if not (math.isfinite(max_bps) and max_bps > 0.0):
            raise InvalidArgument("max_bps", f"must be a positive finite number, got {max_bps!r}")
        self._alpha = alpha
        self._max_bps = max_bps
        # Per switch, per port number: a reply updates one switch's ports, and
        # small-integer keys hash for free (every port of the fabric, every poll).
        self._ports: dict[Dpid, dict[PortNo, PortState]] = {}

    def update(self, port: PortRef, counters: PortCounters, now: float) -> PortRate | None:
        """Record ``counters`` read at ``now``; return the new smoothed rate, or
        None when this snapshot produced no trustworthy sample."""
        _check_time(now)
        return self._update(self._ports.setdefault(port.dpid, {}), port.port, counters, now)

    def update_switch(
        self, dpid: Dpid, stats: Iterable[tuple[PortNo, PortCounters]], now: float
    ) -> Mapping[PortNo, PortState]:
        """One port-stats reply of switch ``dpid`` (as :meth:`update` per port);
        returns that switch's ports (see :meth:`ports_of`)."""
        _check_time(now)
        ports = self._ports.setdefault(dpid, {})
        update = self._update
        for port_no, counters in stats:
            update(ports, port_no, counters, now)
        return ports

    def _update(
        self, ports: dict[PortNo, PortState], port_no: PortNo, counters: PortCounters, now: float
    ) -> PortRate | None:
        state = ports.get(port_no)
        if state is None:
            ports[port_no] = PortState(counters, now)
            return None
        dt = now - state.time
        if dt <= 0.0:
            # A duplicate or reordered reply: keep the older baseline so the
            # next in-order reply is measured over its true interval.
            return None
        old = state.counters
        rx_bytes = counters.rx_bytes - old.rx_bytes
        tx_bytes = counters.tx_bytes - old.tx_bytes
        rx_packets = counters.rx_packets - old.rx_packets
        tx_packets = counters.tx_packets - old.tx_packets
        # A counter that went backwards was reset (switch or port restarted).
        # A 64-bit wrap looks the same and is treated the same: at 400 Gb/s a
        # byte counter wraps after ~11 years, a reset is far more likely, and
        # guessing a wrap would turn a reset into a huge bogus rate.
        # An absurd jump forwards is re-baselined as well: keeping the old
        # baseline would make the next sample absurd too.
        state.counters, state.time = counters, now
        if rx_bytes < 0 or tx_bytes < 0 or rx_packets < 0 or tx_packets < 0:
            return None
        tx_bps = tx_bytes * 8.0 / dt
        rx_bps = rx_bytes * 8.0 / dt
        if tx_bps > self._max_bps or rx_bps > self._max_bps:
            return None
        sample = PortRate(tx_bps, rx_bps, tx_packets / dt, rx_packets / dt, now)
        state.raw = sample
        rate = state.rate = self._smooth(state.rate, sample)
        return rate

    def _smooth(self, old: PortRate | None, new: PortRate) -> PortRate:
        """The EWMA ``a * new + (1 - a) * old`` of each rate (every port, every poll:
        written out, no helper call per rate)."""
        if old is None:
            return new
        a = self._alpha
        b = 1.0 - a
        return PortRate(
            a * new.tx_bps + b * old.tx_bps,
            a * new.rx_bps + b * old.rx_bps,
            a * new.tx_pps + b * old.tx_pps,
            a * new.rx_pps + b * old.rx_pps,
            new.time,
        )

    def state(self, port: PortRef) -> PortState | None:
        """What the estimator holds of ``port``, or None if it never reported."""
        ports = self._ports.get(port.dpid)
        return None if ports is None else ports.get(port.port)

    def latest(self, port: PortRef) -> PortRate | None:
        """The last smoothed rate of ``port``, or None if it has none yet."""
        state = self.state(port)
        return None if state is None else state.rate

    def latest_raw(self, port: PortRef) -> PortRate | None:
        """The last unsmoothed rate of ``port`` (over the last poll interval only).

        For decisions that have their own filter, such as the congestion
        detector's hysteresis: smoothing in front of it would delay a real
        hot spot by several polls.
        """
        state = self.state(port)
        return None if state is None else state.raw

    def ports_of(self, dpid: Dpid) -> Mapping[PortNo, PortState]:
        """Switch ``dpid``'s ports by number (empty if none reported): the state of a
        switch's ports in one lookup, for a caller that reads many of them."""
        return self._ports.get(dpid, _NO_PORTS)

    def latest_counters(self, port: PortRef) -> PortCounters | None:
        """The last counters accepted as a baseline for ``port`` (for the exporter)."""
        state = self.state(port)
        return None if state is None else state.counters

    def counters_snapshot(self) -> tuple[tuple[PortRef, PortCounters], ...]:
        """Every port's latest counters, sorted by port: an immutable value that
        another thread (the metrics exporter) may read while the hub goes on.

        The exporter builds it on its own thread: each dict is copied by one C call
        (``sorted`` of its items, keyed by int), so a port the hub forgets meanwhile
        is in the snapshot or not, never a missing key."""
        return tuple(
            (PortRef(dpid, port_no), state.counters)
            for dpid, ports in sorted(self._ports.items())
            for port_no, state in sorted(ports.items(), key=_port_number)
        )

    def forget_port(self, port: PortRef) -> None:
        """Drop all state of ``port``; its next snapshot is a fresh baseline."""
        ports = self._ports.get(port.dpid)
        if ports is not None:
            ports.pop(port.port, None)

    def forget_switch(self, dpid: Dpid) -> None:
        """Drop all state of switch ``dpid`` (it disconnected; on reconnect its
        counters may have restarted, so it starts from a fresh baseline)."""
        self._ports.pop(dpid, None)


_NO_PORTS: Mapping[PortNo, PortState] = MappingProxyType({})


def _port_number(item: tuple[PortNo, PortState]) -> PortNo:
    return item[0]


def _check_time(now: float) -> None:
    if not math.isfinite(now):
        raise InvalidArgument("now", f"must be a finite time, got {now!r}")
