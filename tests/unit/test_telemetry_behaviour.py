"""Telemetry as the link monitor uses it: smoothed rates, congestion streaks, capacities.

Every smoothed rate (bits and packets, both directions) feeds the metrics the
operator graphs; the congestion detector's streaks decide when a rebalance
happens; capacity overrides and their error lines come from the config file.
"""

from __future__ import annotations

import math
import random

import pytest

from controller.errors import InvalidArgument
from controller.fabric.model import LinkId, PortRef
from controller.telemetry.capacity import CapacityConfig, LinkOverride, parse_link_ref
from controller.telemetry.congestion import CongestionDetector
from controller.telemetry.counters import PortCounters
from controller.telemetry.rates import RateEstimator

PORT = PortRef(0x1001, 3)
LINK = LinkId(PortRef(0x1001, 3), PortRef(0x100001, 1))
NAMES = {0x1001: "leaf1", 0x100001: "spine1", 0x100002: "spine2"}


def names(dpid: int) -> str:
    return NAMES.get(dpid, f"{dpid:016x}")


def counters(t: int, *, scale: int = 1) -> PortCounters:
    """Counters after ``t`` seconds of 1000 B/s out, 500 B/s in, 10 and 5 packets/s."""
    return PortCounters(
        tx_bytes=1000 * t * scale,
        rx_bytes=500 * t * scale,
        tx_packets=10 * t * scale,
        rx_packets=5 * t * scale,
    )


# ------------------------------------------------------------------------- rates
def test_every_rate_is_smoothed_and_stamped_with_the_latest_sample() -> None:
    est = RateEstimator(alpha=0.25)
    est.update(PORT, counters(0), now=0.0)
    first = est.update(PORT, counters(1), now=1.0)
    assert first is not None
    assert (first.tx_bps, first.rx_bps, first.tx_pps, first.rx_pps) == (8000, 4000, 10, 5)
    # The next second runs at three times the rate: each EWMA moves a quarter of the way.
    second_counters = PortCounters(
        tx_bytes=1000 + 3000, rx_bytes=500 + 1500, tx_packets=10 + 30, rx_packets=5 + 15
    )
    second = est.update(PORT, second_counters, now=2.0)
    assert second is not None and second == est.latest(PORT)
    assert (second.tx_bps, second.rx_bps, second.tx_pps, second.rx_pps, second.time) == (
        0.25 * 24000 + 0.75 * 8000,
        0.25 * 12000 + 0.75 * 4000,
        0.25 * 30 + 0.75 * 10,
        0.25 * 15 + 0.75 * 5,
        2.0,
    )


def test_the_raw_rate_is_the_last_interval_alone_and_is_forgotten_with_the_port() -> None:
    est = RateEstimator(alpha=0.25)
    est.update(PORT, counters(0), now=0.0)
    est.update(PORT, counters(1), now=1.0)
    est.update(PORT, PortCounters(tx_bytes=4000, rx_bytes=2000, tx_packets=40, rx_packets=20), 2.0)
    raw = est.latest_raw(PORT)
    assert raw is not None and (raw.tx_bps, raw.rx_pps, raw.time) == (24000, 15, 2.0)
    smoothed = est.latest(PORT)
    assert smoothed is not None and smoothed.tx_bps == 0.25 * 24000 + 0.75 * 8000
    est.forget_switch(PORT.dpid)
    assert est.latest_raw(PORT) is None and est.latest(PORT) is None
    est.update(PORT, counters(0), now=3.0)
    est.update(PORT, counters(1), now=4.0)
    est.forget_port(PORT)
    assert est.latest_raw(PORT) is None


def test_a_link_is_rising_between_its_first_hot_sample_and_the_decision() -> None:
    det = CongestionDetector(threshold=0.8, clear_threshold=0.6, samples=3)
    assert not det.rising(LINK)
    det.observe(LINK, 0.9, 1.0)
    assert det.rising(LINK) and not det.is_congested(LINK)
    det.observe(LINK, 0.9, 2.0)
    assert det.rising(LINK)
    det.observe(LINK, 0.9, 3.0)
    assert det.is_congested(LINK) and not det.rising(LINK)
    det.observe(LINK, 0.5, 4.0)  # clearing streak: not "rising"
    assert not det.rising(LINK)


def test_the_rising_links_are_kept_equal_to_each_links_state() -> None:
    rng = random.Random(11)
    det = CongestionDetector(threshold=0.8, clear_threshold=0.6, samples=3)
    links = [LinkId(PortRef(1, p), PortRef(2, p)) for p in range(1, 6)]
    seen = set()
    for step in range(1, 2000):
        link = rng.choice(links)
        if rng.random() < 0.03:
            det.forget(link)
        else:
            det.observe(link, rng.choice((0.3, 0.7, 0.9, 0.95)), step * 0.5)
        expected = {lid for lid, st in det._links.items() if not st.congested and st.streak > 0}
        assert det.rising_links() == expected
        assert all(det.rising(lid) == (lid in expected) for lid in links)
        seen.add(len(expected))
    assert max(seen) >= 3  # several links were rising at once


def test_a_rate_exactly_at_the_ceiling_is_believed() -> None:
    est = RateEstimator(max_bps=8000.0)
    est.update(PORT, counters(0), now=0.0)
    both = est.update(PORT, PortCounters(tx_bytes=1000, rx_bytes=1000), now=1.0)
    assert both is not None and both.rx_bps == 8000.0


def test_bad_estimator_settings_and_times_say_what_is_wrong() -> None:
    with pytest.raises(InvalidArgument) as err:
        RateEstimator(alpha=0.0)
    assert (err.value.field, err.value.reason) == ("alpha", "must be in (0, 1], got 0.0")
    with pytest.raises(InvalidArgument) as err:
        RateEstimator(max_bps=math.inf)
    assert (err.value.field, err.value.reason) == (
        "max_bps",
        "must be a positive finite number, got inf",
    )
    assert RateEstimator(max_bps=0.5) is not None  # tiny, but a rate
    with pytest.raises(InvalidArgument) as err:
        RateEstimator().update(PORT, counters(0), now=math.nan)
    assert (err.value.field, err.value.reason) == ("now", "must be a finite time, got nan")


def test_forgetting_a_port_it_never_saw_is_harmless() -> None:
    est = RateEstimator()
    est.forget_port(PORT)
    est.update(PORT, counters(0), now=0.0)
    est.forget_port(PORT)
    assert est.latest_counters(PORT) is None and est.latest(PORT) is None


def test_counter_errors_name_the_counter() -> None:
    with pytest.raises(InvalidArgument) as err:
        PortCounters(rx_bytes=1.5)  # type: ignore[arg-type]
    assert (err.value.field, err.value.reason) == ("rx_bytes", "must be an integer, not 1.5")
    with pytest.raises(InvalidArgument) as err:
        PortCounters(tx_errors=-1)
    assert (err.value.field, err.value.reason) == (
        "tx_errors",
        "-1 is outside the unsigned 64-bit range",
    )


# -------------------------------------------------------------------- congestion
def test_after_a_flip_the_streak_starts_again() -> None:
    det = CongestionDetector(threshold=0.8, clear_threshold=0.6, samples=2)
    assert det.observe(LINK, 0.9, now=1.0) is None
    on = det.observe(LINK, 0.9, now=2.0)
    assert on is not None and on.congested
    assert det.observe(LINK, 0.1, now=3.0) is None  # one cool sample is not enough
    off = det.observe(LINK, 0.1, now=4.0)
    assert off is not None and not off.congested
    assert det.observe(LINK, 0.9, now=5.0) is None


def test_an_idle_link_is_a_valid_sample() -> None:
    det = CongestionDetector(samples=1)
    assert det.observe(LINK, 0.0, now=1.0) is None
    det.forget(LINK)
    det.forget(LINK)  # twice is harmless


def test_bad_detector_settings_say_what_is_wrong() -> None:
    cases = [
        ({"threshold": 1.5}, "threshold", "must be in (0, 1], got 1.5"),
        (
            {"threshold": 0.8, "clear_threshold": 0.9},
            "clear_threshold",
            "must be above 0 and below threshold 0.8, got 0.9",
        ),
        ({"samples": 0}, "samples", "must be an integer >= 1, got 0"),
    ]
    for kwargs, field, reason in cases:
        with pytest.raises(InvalidArgument) as err:
            CongestionDetector(**kwargs)  # type: ignore[arg-type]
        assert (err.value.field, err.value.reason) == (field, reason)
    with pytest.raises(InvalidArgument) as err:
        CongestionDetector().observe(LINK, -0.1, now=1.0)
    assert (err.value.field, err.value.reason) == (
        "utilization",
        "must be a finite ratio >= 0, got -0.1",
    )


# -------------------------------------------------------------------- capacities
def test_link_references_print_as_written() -> None:
    assert str(parse_link_ref("leaf1-spine1")) == "leaf1-spine1"
    assert str(parse_link_ref(" leaf1/3-spine1/1 ")) == "leaf1/3-spine1/1"


def test_link_reference_errors_name_the_field_and_the_form() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_link_ref("  ")
    assert (err.value.field, err.value.reason) == (
        "link",
        "empty link reference; expected 'A-B' or 'A/p-B/q'",
    )
    with pytest.raises(InvalidArgument) as err:
        parse_link_ref("leaf1/0-spine1/1")
    assert err.value.reason == (
        "'leaf1/0-spine1/1' is not a link reference: expected 'A-B' or 'A/p-B/q' with "
        "switch names or 16-hex-digit dpids and port numbers 1..4294967039"
    )
    with pytest.raises(InvalidArgument) as err:
        parse_link_ref("a-b-c", field="x")
    assert (err.value.field, err.value.reason) == (
        "x",
        "'a-b-c' is ambiguous: switch names contain '-'; name the cable by ports "
        "('A/p-B/q') or use dpids",
    )


def test_capacity_values_must_be_positive_numbers_of_mbits() -> None:
    for value, reason in (
        ("ten", "must be a number of Mbit/s, not 'ten'"),
        (0, "must be a positive finite number of Mbit/s, got 0"),
    ):
        with pytest.raises(InvalidArgument) as err:
            CapacityConfig.from_config(None, {"leaf1-spine1": value})  # type: ignore[dict-item]
        assert (err.value.field, err.value.reason) == (
            "link_capacity_overrides.leaf1-spine1",
            reason,
        )
    small = CapacityConfig.from_config(0.5, {})
    assert small.default_bps == 0.5e6


def test_an_override_for_another_cable_does_not_hide_the_right_one() -> None:
    config = CapacityConfig.from_config(None, {"leaf1-spine2": 5, "leaf1-spine1": 7})
    assert config.capacity_for(LINK, names=names, port_speed_bps=0) == 7e6


def test_a_port_speed_is_used_only_when_it_is_a_real_speed() -> None:
    config = CapacityConfig()
    assert config.capacity_for(LINK, names=names, port_speed_bps=math.inf) == 0.0
    assert config.capacity_for(LINK, names=names, port_speed_bps=0.0) == 0.0
    assert config.capacity_for(LINK, names=names, port_speed_bps=0.5) == 0.5


def test_unmatched_overrides_without_text_print_their_reference() -> None:
    ghost = LinkOverride(parse_link_ref("leaf9/1-spine9/2"), 1e6)
    config = CapacityConfig(overrides=(ghost,))
    assert config.unmatched([LINK], names) == ["leaf9/1-spine9/2"]
