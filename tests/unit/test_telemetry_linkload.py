"""Link load from port rates: source tx first, destination rx as fallback."""

from __future__ import annotations

import pytest

from controller.fabric.model import Link, LinkId, PortRef
from controller.telemetry.counters import PortCounters
from controller.telemetry.linkload import link_loads
from controller.telemetry.rates import RateEstimator

A = LinkId(PortRef(1, 3), PortRef(2, 1))  # leaf 1 port 3 -> spine 2 port 1
B = A.reverse()


def feed(est: RateEstimator, port: PortRef, *, tx_per_s: int = 0, rx_per_s: int = 0) -> None:
    """Two snapshots one second apart, so ``port`` gets a raw rate (alpha=1)."""
    est.update(port, PortCounters(), 0.0)
    est.update(port, PortCounters(tx_bytes=tx_per_s, rx_bytes=rx_per_s), 1.0)


def links() -> dict[LinkId, Link]:
    return {A: Link(A, last_seen=0.0), B: Link(B, last_seen=0.0)}


def test_rate_is_source_tx_and_utilization_is_rate_over_capacity() -> None:
    est = RateEstimator(alpha=1.0)
    feed(est, A.src, tx_per_s=1_000_000, rx_per_s=250_000)  # 8 Mb/s out, 2 Mb/s in
    feed(est, A.dst, tx_per_s=250_000, rx_per_s=999_000)
    loads = link_loads(links(), est, lambda lid: 10e6)
    assert loads[A].rate_bps == pytest.approx(8e6)
    assert loads[A].utilization == pytest.approx(0.8)
    assert loads[A].capacity_bps == 10e6
    # The reverse direction leaves from A.dst: its tx, not A.src's rx.
    assert loads[B].rate_bps == pytest.approx(2e6)
    assert loads[B].utilization == pytest.approx(0.2)
    assert loads[A].measured and loads[B].measured


def test_falls_back_to_destination_rx_when_source_has_no_rate() -> None:
    est = RateEstimator(alpha=1.0)
    feed(est, A.dst, rx_per_s=500_000)
    loads = link_loads(links(), est, lambda lid: 8e6)
    assert loads[A].rate_bps == pytest.approx(4e6)
    assert loads[A].utilization == pytest.approx(0.5)
    assert loads[A].measured


def test_unknown_capacity_gives_zero_utilization() -> None:
    est = RateEstimator(alpha=1.0)
    feed(est, A.src, tx_per_s=1_000_000)
    loads = link_loads(links(), est, lambda lid: 0.0)
    assert loads[A].rate_bps == pytest.approx(8e6)
    assert loads[A].utilization == 0.0


def test_no_rates_yet_is_marked_unmeasured() -> None:
    est = RateEstimator()
    est.update(A.src, PortCounters(tx_bytes=5), 0.0)  # only a baseline
    loads = link_loads(links(), est, lambda lid: 1e9)
    assert loads[A].rate_bps == 0.0 and not loads[A].measured


def test_capacity_callback_is_asked_per_direction() -> None:
    est = RateEstimator(alpha=1.0)
    feed(est, A.src, tx_per_s=125_000)
    feed(est, B.src, tx_per_s=125_000)
    caps = {A: 1e6, B: 4e6}
    loads = link_loads(links(), est, caps.__getitem__)
    assert loads[A].utilization == pytest.approx(1.0)
    assert loads[B].utilization == pytest.approx(0.25)
