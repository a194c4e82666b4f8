"""Counters -> rates: EWMA math, resets, wraps, duplicate times, absurd jumps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.errors import InvalidArgument
from controller.fabric.model import PortRef
from controller.telemetry.counters import COUNTER_MAX, UNSUPPORTED, PortCounters
from controller.telemetry.rates import RateEstimator

P1 = PortRef(1, 1)
P2 = PortRef(1, 2)
Q1 = PortRef(2, 1)


def c(tx: int = 0, rx: int = 0, txp: int = 0, rxp: int = 0) -> PortCounters:
    return PortCounters(tx_bytes=tx, rx_bytes=rx, tx_packets=txp, rx_packets=rxp)


def test_first_sample_is_a_baseline() -> None:
    est = RateEstimator()
    assert est.update(P1, c(tx=1000), 10.0) is None
    assert est.latest(P1) is None
    assert est.latest_counters(P1) == c(tx=1000)


def test_raw_rates_with_alpha_one() -> None:
    est = RateEstimator(alpha=1.0)
    est.update(P1, c(tx=0, rx=0, txp=0, rxp=0), 0.0)
    rate = est.update(P1, c(tx=1_250_000, rx=250_000, txp=1000, rxp=400), 2.0)
    assert rate is not None
    assert rate.tx_bps == pytest.approx(5_000_000.0)  # 1.25 MB * 8 / 2 s
    assert rate.rx_bps == pytest.approx(1_000_000.0)
    assert rate.tx_pps == pytest.approx(500.0)
    assert rate.rx_pps == pytest.approx(200.0)
    assert rate.time == 2.0
    assert est.latest(P1) == rate


def test_ewma_weights_the_new_sample_by_alpha() -> None:
    est = RateEstimator(alpha=0.25)
    est.update(P1, c(tx=0), 0.0)
    r1 = est.update(P1, c(tx=1000), 1.0)  # 8000 b/s: the first rate is taken as is
    r2 = est.update(P1, c(tx=1000 + 3000), 2.0)  # 24000 b/s
    r3 = est.update(P1, c(tx=4000), 3.0)  # 0 b/s
    assert r1 is not None and r2 is not None and r3 is not None
    assert r1.tx_bps == pytest.approx(8000.0)
    expected2 = 0.25 * 24000 + 0.75 * 8000
    assert r2.tx_bps == pytest.approx(expected2)
    assert r3.tx_bps == pytest.approx(0.75 * expected2)


def test_uneven_intervals_use_the_real_dt() -> None:
    est = RateEstimator(alpha=1.0)
    est.update(P1, c(tx=0), 100.0)
    r = est.update(P1, c(tx=500), 100.5)
    assert r is not None and r.tx_bps == pytest.approx(8000.0)


def test_duplicate_and_older_timestamps_are_skipped_and_keep_baseline() -> None:
    est = RateEstimator(alpha=1.0)
    est.update(P1, c(tx=0), 1.0)
    assert est.update(P1, c(tx=999), 1.0) is None
    assert est.update(P1, c(tx=999), 0.5) is None
    # The next in-order sample is measured from the original baseline at t=1.
    r = est.update(P1, c(tx=2000), 3.0)
    assert r is not None and r.tx_bps == pytest.approx(8000.0)


def test_counter_reset_rebaselines_without_a_sample() -> None:
    est = RateEstimator(alpha=1.0)
    est.update(P1, c(tx=10_000, rx=10_000), 0.0)
    before = est.update(P1, c(tx=20_000, rx=20_000), 1.0)
    assert before is not None
    assert est.update(P1, c(tx=100, rx=20_500), 2.0) is None  # tx went backwards
    assert est.latest(P1) == before  # the last good rate is kept, never negative
    r = est.update(P1, c(tx=1100, rx=21_500), 3.0)
    assert r is not None
    assert r.tx_bps == pytest.approx(8000.0)
    assert r.rx_bps == pytest.approx(8000.0)


def test_packet_counter_going_backwards_is_a_reset_too() -> None:
    est = RateEstimator(alpha=1.0)
    est.update(P1, c(tx=0, txp=50), 0.0)
    assert est.update(P1, c(tx=100, txp=3), 1.0) is None


def test_64bit_wrap_is_treated_as_a_reset() -> None:
    est = RateEstimator(alpha=1.0)
    est.update(P1, c(tx=COUNTER_MAX - 100), 0.0)
    assert est.update(P1, c(tx=50), 1.0) is None
    r = est.update(P1, c(tx=1050), 2.0)
    assert r is not None and r.tx_bps == pytest.approx(8000.0)


def test_absurd_jump_is_discarded_and_rebaselined() -> None:
    est = RateEstimator(alpha=1.0, max_bps=10e9)
    est.update(P1, c(rx=0), 0.0)
    assert est.update(P1, c(rx=10**12), 1.0) is None  # 8 Tb/s
    assert est.latest(P1) is None
    r = est.update(P1, c(rx=10**12 + 1000), 2.0)
    assert r is not None and r.rx_bps == pytest.approx(8000.0)


def test_rate_at_the_bound_is_accepted() -> None:
    est = RateEstimator(alpha=1.0, max_bps=8000.0)
    est.update(P1, c(tx=0), 0.0)
    r = est.update(P1, c(tx=1000), 1.0)
    assert r is not None and r.tx_bps == pytest.approx(8000.0)


def test_ports_are_independent() -> None:
    est = RateEstimator(alpha=1.0)
    est.update(P1, c(tx=0), 0.0)
    est.update(P2, c(tx=0), 0.0)
    est.update(P1, c(tx=1000), 1.0)
    est.update(P2, c(tx=2000), 1.0)
    r1, r2 = est.latest(P1), est.latest(P2)
    assert r1 is not None and r2 is not None
    assert r1.tx_bps == pytest.approx(8000.0)
    assert r2.tx_bps == pytest.approx(16000.0)


def test_forget_switch_and_port_rebaseline() -> None:
    est = RateEstimator(alpha=1.0)
    for port in (P1, P2, Q1):
        est.update(port, c(tx=0), 0.0)
        est.update(port, c(tx=1000), 1.0)
    est.forget_switch(1)
    assert est.latest(P1) is None and est.latest(P2) is None
    assert est.latest_counters(P1) is None
    assert est.latest(Q1) is not None
    # After a reconnect the switch's counters restart; the first reply is a baseline.
    assert est.update(P1, c(tx=10), 5.0) is None
    est.forget_port(Q1)
    assert est.latest(Q1) is None
    assert est.update(Q1, c(tx=5000), 6.0) is None


def test_counters_snapshot_is_sorted_and_immutable() -> None:
    est = RateEstimator()
    est.update(Q1, c(tx=3), 0.0)
    est.update(P2, c(tx=2), 0.0)
    est.update(P1, c(tx=1), 0.0)
    snap = est.counters_snapshot()
    assert [p for p, _ in snap] == [P1, P2, Q1]
    est.update(P1, c(tx=100), 1.0)
    assert snap[0][1] == c(tx=1)  # the published snapshot did not change


def test_unsupported_counters_give_zero_rates_not_errors() -> None:
    est = RateEstimator(alpha=1.0)
    base = PortCounters(tx_bytes=0, rx_dropped=UNSUPPORTED)
    est.update(P1, base, 0.0)
    r = est.update(P1, PortCounters(tx_bytes=1000, rx_dropped=UNSUPPORTED), 1.0)
    assert r is not None and r.rx_bps == 0.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"max_bps": 0.0}, "max_bps"),
        ({"max_bps": float("inf")}, "max_bps"),
    ],
)
def test_estimator_rejects_bad_arguments(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        RateEstimator(**kwargs)
    assert exc.value.field == field


def test_non_finite_time_is_rejected() -> None:
    with pytest.raises(InvalidArgument) as exc:
        RateEstimator().update(P1, c(), float("nan"))
    assert exc.value.field == "now"


@pytest.mark.parametrize("value", [-1, 2**64, 1.5, True])
def test_counters_must_be_unsigned_64bit_integers(value: object) -> None:
    with pytest.raises(InvalidArgument) as exc:
        PortCounters(tx_errors=value)  # type: ignore[arg-type]
    assert exc.value.field == "tx_errors"


def test_supported_flags_all_ones_counters() -> None:
    pc = PortCounters(rx_errors=UNSUPPORTED, tx_errors=3)
    assert not pc.supported("rx_errors")
    assert pc.supported("tx_errors")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, -0.5, 0.5, 1.0]),  # time step: repeats and reorders too
            st.sampled_from([1, 2]),  # switch
            st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=3, unique=True),
            st.sampled_from([0, 500, 10**6, 10**12]),  # counter step (10**12: absurd)
            st.booleans(),  # counters restart first
            st.sampled_from(["", "port", "switch"]),  # forget before the reply
        ),
        max_size=40,
    )
)
def test_a_whole_reply_at_once_is_the_same_as_port_by_port(steps: list) -> None:  # type: ignore[type-arg]
    """``update_switch`` (the hub's path, one call per reply) leaves every port's
    counters and rates as ``update`` on each port of the reply would."""
    one, whole = RateEstimator(alpha=0.3), RateEstimator(alpha=0.3)
    counters: dict[PortRef, int] = {}
    now = 0.0
    for dt, dpid, ports, step, restart, forget in steps:
        now += dt
        for est in (one, whole):
            if forget == "switch":
                est.forget_switch(dpid)
            elif forget == "port":
                est.forget_port(PortRef(dpid, ports[0]))
        reply = []
        for port in ports:
            ref = PortRef(dpid, port)
            counters[ref] = step if restart else counters.get(ref, 0) + step
            reply.append((port, c(tx=counters[ref], rx=counters[ref] // 2, rxp=counters[ref] // 9)))
        for port, cnt in reply:
            one.update(PortRef(dpid, port), cnt, now)
        held = whole.update_switch(dpid, reply, now)
        assert held is whole.ports_of(dpid) and set(held) >= set(ports)
        for ref in (PortRef(d, p) for d in (1, 2) for p in (1, 2, 3)):
            assert one.latest(ref) == whole.latest(ref)
            assert one.latest_raw(ref) == whole.latest_raw(ref)
            assert one.latest_counters(ref) == whole.latest_counters(ref)
            state = whole.ports_of(ref.dpid).get(ref.port)
            assert (state and state.rate) == whole.latest(ref)
        assert one.counters_snapshot() == whole.counters_snapshot()
    assert whole.ports_of(99) == {}
