"""Congestion hysteresis: on, stay, off; in-between values never toggle."""

from __future__ import annotations

import pytest

from controller.errors import InvalidArgument
from controller.fabric.model import LinkId, PortRef
from controller.telemetry.congestion import CongestionDetector, CongestionEvent

L = LinkId(PortRef(1, 3), PortRef(2, 1))
R = L.reverse()


def run(det: CongestionDetector, values: list[float], *, start: float = 0.0) -> list[bool]:
    """Feed ``values`` one second apart; return the congested flag of each event."""
    flips = []
    for i, u in enumerate(values):
        ev = det.observe(L, u, start + i)
        if ev is not None:
            flips.append(ev.congested)
    return flips


def test_turns_on_after_consecutive_samples_and_reports_the_event() -> None:
    det = CongestionDetector(threshold=0.8, clear_threshold=0.6, samples=2)
    assert det.observe(L, 0.9, 1.0) is None
    assert det.congested() == frozenset()
    ev = det.observe(L, 0.95, 2.0)
    assert ev == CongestionEvent(link=L, congested=True, utilization=0.95, time=2.0)
    assert det.congested() == frozenset({L})
    assert det.is_congested(L) and not det.is_congested(R)


def test_a_single_spike_does_not_congest() -> None:
    det = CongestionDetector(samples=2)
    assert run(det, [0.9, 0.5, 0.9, 0.7, 0.9, 0.1]) == []


def test_stays_congested_between_thresholds_and_clears_below() -> None:
    det = CongestionDetector(threshold=0.8, clear_threshold=0.6, samples=2)
    flips = run(det, [0.9, 0.9, 0.7, 0.7, 0.7, 0.5, 0.65, 0.5, 0.4])
    # on at the 2nd sample; 0.65 breaks the clearing streak; off after 0.5, 0.4
    assert flips == [True, False]
    assert det.congested() == frozenset()


def test_flapping_between_thresholds_never_toggles() -> None:
    det = CongestionDetector(threshold=0.8, clear_threshold=0.6, samples=1)
    assert run(det, [0.61, 0.79, 0.7, 0.62, 0.78] * 4) == []
    run(det, [0.85], start=100.0)
    assert det.is_congested(L)
    assert run(det, [0.61, 0.79, 0.7, 0.62, 0.78] * 4, start=200.0) == []
    assert det.is_congested(L)


def test_thresholds_are_strict() -> None:
    det = CongestionDetector(threshold=0.8, clear_threshold=0.6, samples=1)
    assert run(det, [0.8]) == []
    assert run(det, [0.81], start=10.0) == [True]
    assert run(det, [0.6], start=20.0) == []
    assert run(det, [0.59], start=30.0) == [False]


def test_samples_one_reacts_immediately() -> None:
    det = CongestionDetector(samples=1)
    assert run(det, [0.9, 0.1, 0.9]) == [True, False, True]


def test_directions_are_independent() -> None:
    det = CongestionDetector(samples=1)
    det.observe(L, 0.9, 1.0)
    assert det.observe(R, 0.1, 1.0) is None
    assert det.congested() == frozenset({L})


def test_repeated_observation_of_the_same_sample_is_ignored() -> None:
    det = CongestionDetector(samples=3)
    for _ in range(5):
        assert det.observe(L, 0.9, 1.0) is None
    assert det.observe(L, 0.9, 0.5) is None  # older than the last: ignored too
    assert det.observe(L, 0.9, 2.0) is None
    assert det.observe(L, 0.9, 3.0) is not None


def test_forget_drops_state_without_event() -> None:
    det = CongestionDetector(samples=1)
    det.observe(L, 0.9, 1.0)
    det.forget(L)
    assert det.congested() == frozenset()
    # The link came back: it starts clear, so a low value emits nothing...
    assert det.observe(L, 0.1, 0.5) is None
    # ...and a half-built streak does not survive forgetting either.
    det2 = CongestionDetector(samples=2)
    det2.observe(L, 0.9, 1.0)
    det2.forget(L)
    assert det2.observe(L, 0.9, 2.0) is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.01}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"clear_threshold": 0.0}, "clear_threshold"),
        ({"clear_threshold": 0.8}, "clear_threshold"),
        ({"threshold": 0.5, "clear_threshold": 0.6}, "clear_threshold"),
        ({"samples": 0}, "samples"),
        ({"samples": 1.5}, "samples"),
        ({"samples": True}, "samples"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        CongestionDetector(**kwargs)  # type: ignore[arg-type]
    assert exc.value.field == field


def test_threshold_of_one_is_allowed() -> None:
    det = CongestionDetector(threshold=1.0, clear_threshold=0.9, samples=1)
    assert det.observe(L, 1.05, 1.0) is not None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.1])
def test_rejects_bad_utilization(value: float) -> None:
    with pytest.raises(InvalidArgument) as exc:
        CongestionDetector().observe(L, value, 1.0)
    assert exc.value.field == "utilization"
