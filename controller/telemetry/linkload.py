"""Per-direction link load: the rate a directed link carries and its utilization.

A directed link ``src -> dst`` carries what the ``src`` port transmits; when
that port has no rate yet (its switch's stats have not arrived twice), what
the ``dst`` port receives is the same traffic seen from the other end. This
module only combines rates and capacities the caller already has; it does not
poll, smooth, or decide what counts as congested.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from controller.fabric.model import Link, LinkId
from controller.telemetry.rates import PortRate, PortState, RateEstimator

__all__ = ["LinkLoadSample", "carried", "link_load", "link_loads", "link_rate"]


@dataclass(frozen=True)
class LinkLoadSample:
    """Load of one direction. ``utilization`` is 0 when the capacity is unknown
    (0), and may exceed 1 briefly (counters and polls are not exact).
    ``measured`` is False when neither end has a rate yet: the zero rate is
    then a placeholder, not an observation."""

    rate_bps: float
    capacity_bps: float
    utilization: float
    measured: bool = True


def link_rate(link: LinkId, rates: RateEstimator, *, raw: bool = False) -> tuple[float, bool]:
    """``(bits/s, measured)`` of one directed link from the estimator's latest rates
    (smoothed, or with ``raw`` the last interval's alone): what its source sends,
    else what its destination receives, else ``(0.0, False)``."""
    bps, rate = carried(rates.state(link.src), rates.state(link.dst), raw=raw)
    return bps, rate is not None


def carried(
    src: PortState | None, dst: PortState | None, *, raw: bool = False
) -> tuple[float, PortRate | None]:
    """``(bits/s, the rate read)`` of a directed link from its ports' states (see
    :func:`link_rate`); ``(0.0, None)`` while neither end has a rate."""
    rate = None if src is None else (src.raw if raw else src.rate)
    if rate is not None:
        return rate.tx_bps, rate
    rate = None if dst is None else (dst.raw if raw else dst.rate)
    return (0.0, None) if rate is None else (rate.rx_bps, rate)


def link_load(
    link: LinkId, rates: RateEstimator, capacity_bps: float, *, raw: bool = False
) -> LinkLoadSample:
    """The load of one directed link from the estimator's latest rates
    (smoothed, or with ``raw`` the last interval's alone)."""
    rate, measured = link_rate(link, rates, raw=raw)
    utilization = rate / capacity_bps if capacity_bps > 0 else 0.0
    return LinkLoadSample(
        rate_bps=rate, capacity_bps=capacity_bps, utilization=utilization, measured=measured
    )


def link_loads(
    links: Mapping[LinkId, Link],
    rates: RateEstimator,
    capacity_of: Callable[[LinkId], float],
) -> dict[LinkId, LinkLoadSample]:
    """The load of every link in ``links``; ``capacity_of`` gives bit/s (0 = unknown)."""
    return {lid: link_load(lid, rates, capacity_of(lid)) for lid in links}
