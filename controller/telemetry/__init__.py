"""Telemetry: port counters -> smoothed rates -> link load -> congestion events.

Pure core: the hub feeds counter snapshots with the time it read them, and
gets back rates, per-direction link loads and congestion state changes. No
module here polls a switch, reads a clock, or decides which flows to move.
"""

from controller.telemetry.capacity import (
    CapacityConfig,
    LinkEnd,
    LinkOverride,
    LinkRef,
    parse_link_ref,
)
from controller.telemetry.congestion import CongestionDetector, CongestionEvent
from controller.telemetry.counters import PortCounters
from controller.telemetry.linkload import (
    LinkLoadSample,
    carried,
    link_load,
    link_loads,
    link_rate,
)
from controller.telemetry.rates import PortRate, RateEstimator

__all__ = [
    "CapacityConfig",
    "CongestionDetector",
    "CongestionEvent",
    "LinkEnd",
    "LinkLoadSample",
    "LinkOverride",
    "LinkRef",
    "PortCounters",
    "PortRate",
    "RateEstimator",
    "carried",
    "link_load",
    "link_rate",
    "link_loads",
    "parse_link_ref",
]
