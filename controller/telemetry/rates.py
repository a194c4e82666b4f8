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
from dataclasses import dataclass

from controller.errors import InvalidArgument
from controller.fabric.model import Dpid, PortRef
from controller.telemetry.counters import PortCounters

__all__ = ["DEFAULT_MAX_BPS", "PortRate", "RateEstimator"]

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


@dataclass(frozen=True)
class _Baseline:
    counters: PortCounters
    time: float


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
        self._baselines: dict[PortRef, _Baseline] = {}
        self._rates: dict[PortRef, PortRate] = {}
        self._raw: dict[PortRef, PortRate] = {}

    def update(self, port: PortRef, counters: PortCounters, now: float) -> PortRate | None:
        """Record ``counters`` read at ``now``; return the new smoothed rate, or
        None when this snapshot produced no trustworthy sample."""
        if not math.isfinite(now):
            raise InvalidArgument("now", f"must be a finite time, got {now!r}")
        base = self._baselines.get(port)
        if base is None:
            self._baselines[port] = _Baseline(counters, now)
            return None
        dt = now - base.time
        if dt <= 0.0:
            # A duplicate or reordered reply: keep the older baseline so the
            # next in-order reply is measured over its true interval.
            return None
        old = base.counters
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
        self._baselines[port] = _Baseline(counters, now)
        if rx_bytes < 0 or tx_bytes < 0 or rx_packets < 0 or tx_packets < 0:
            return None
        tx_bps = tx_bytes * 8.0 / dt
        rx_bps = rx_bytes * 8.0 / dt
        if tx_bps > self._max_bps or rx_bps > self._max_bps:
            return None
        sample = PortRate(tx_bps, rx_bps, tx_packets / dt, rx_packets / dt, now)
        self._raw[port] = sample
        rate = self._smooth(self._rates.get(port), sample)
        self._rates[port] = rate
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

    def latest(self, port: PortRef) -> PortRate | None:
        """The last smoothed rate of ``port``, or None if it has none yet."""
        return self._rates.get(port)

    def latest_raw(self, port: PortRef) -> PortRate | None:
        """The last unsmoothed rate of ``port`` (over the last poll interval only).

        For decisions that have their own filter, such as the congestion
        detector's hysteresis: smoothing in front of it would delay a real
        hot spot by several polls.
        """
        return self._raw.get(port)

    def latest_counters(self, port: PortRef) -> PortCounters | None:
        """The last counters accepted as a baseline for ``port`` (for the exporter)."""
        base = self._baselines.get(port)
        return base.counters if base else None

    def counters_snapshot(self) -> tuple[tuple[PortRef, PortCounters], ...]:
        """Every port's latest counters, sorted by port: an immutable value that
        another thread (the metrics exporter) may read while the hub goes on."""
        return tuple((port, b.counters) for port, b in sorted(self._baselines.items()))

    def forget_port(self, port: PortRef) -> None:
        """Drop all state of ``port``; its next snapshot is a fresh baseline."""
        self._baselines.pop(port, None)
        self._rates.pop(port, None)
        self._raw.pop(port, None)

    def forget_switch(self, dpid: Dpid) -> None:
        """Drop all state of switch ``dpid`` (it disconnected; on reconnect its
        counters may have restarted, so it starts from a fresh baseline)."""
        for port in [p for p in self._baselines if p.dpid == dpid]:
            del self._baselines[port]
        for rates in (self._rates, self._raw):
            for port in [p for p in rates if p.dpid == dpid]:
                del rates[port]
