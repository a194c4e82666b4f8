"""LLDP discovery's settings, its probes, and how often a round of probes goes out.

A round sends one signed frame out of every up port without a host, and every
frame that reaches another switch comes back as a packet-in the hub verifies
and reads. On a large fabric that is most of the hub's time: at 64 x 512
(65,536 directed links) one round costs ~1.5-2 s of CPU, so the default
one-second interval would leave nothing for anything else.

:class:`LldpPacing` keeps discovery within a share of the hub's time
(``lldp_budget``), as the statistics polls are kept within theirs. The engine
reports the CPU it spent building the probes and reading the frames that came
back proving a link it knew (:meth:`LldpPacing.work`; a frame that changes
the topology costs what its reaction costs, which is not discovery's rhythm).
At the start of each round the work of the round before sets the interval,
never shorter than the configured one nor longer than
``lldp_interval_max_s``. The times that count in intervals (a link's expiry,
an edge port's grace before it is trusted as a host port) stretch with it
(:meth:`LldpPacing.stretched`), so a slower round never expires a healthy
link nor trusts a fabric port whose probe has not come back yet. Not
counted: the shim's decoding and encoding of the OpenFlow messages.

Pure: the seconds come in as arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from controller.engine.outputs import PacketOut
from controller.engine.polling import paced_interval
from controller.fabric.frames import build_lldp
from controller.fabric.lldp_auth import LldpSigner
from controller.fabric.model import PortRef

__all__ = ["ConnectivityConfig", "LldpProbe", "LldpPacing", "probe_packets"]

log = logging.getLogger("fabricd.discovery")

SETTLING_ROUNDS = 4  # rounds at a shorter interval before its shorter times apply


@dataclass(frozen=True)
class ConnectivityConfig:
    lldp_interval_s: float = 1.0
    link_timeout_s: float = 3.5
    edge_grace_s: float = 2.0
    warmup_s: float = 4.0
    packet_in_pps: int = 0  # per-switch packet-in meter; 0 = none
    spread_l4: bool = True  # default traffic spreads by source-port bits (flowprog.spread)
    local_repair: bool = True  # spines bounce a failed last hop's packets (flowprog.repair)
    lldp_budget: float = 0.2  # share of the hub's time discovery may take
    lldp_interval_max_s: float = 30.0  # the longest interval the budget may stretch to


@dataclass(frozen=True)
class LldpProbe:
    """Send a discovery probe out of ``port`` (whose MAC is ``hw_addr``)."""

    port: PortRef
    hw_addr: str


def probe_packets(
    signer: LldpSigner, probes: Iterable[LldpProbe], *, now: float
) -> list[PacketOut]:
    """The signed frames of ``probes``, each to go out of its port."""
    return [
        PacketOut(
            dpid=p.port.dpid,
            data=build_lldp(signer, dpid=p.port.dpid, port=p.port.port, hw_addr=p.hw_addr, now=now),
            out_port=p.port.port,
        )
        for p in probes
    ]


class LldpPacing:
    """The LLDP interval in use: the configured one, or stretched to keep a round's
    work within ``budget`` of the hub's time."""

    def __init__(self, *, interval: float, budget: float, max_interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        if not 0 < budget <= 1:
            raise ValueError(f"budget must be in (0, 1], got {budget}")
        self.configured = interval
        self.interval = interval
        self.budget = budget
        self.max_interval = max(interval, max_interval)
        self.round_work = 0.0  # the last round's work (seconds): probes built, frames read
        self._work = 0.0  # seconds spent on the round under way
        self._rounds = 0
        # After a shorter interval is taken, times in intervals keep the longer one
        # for a few rounds: a link seen one long interval ago is not silent yet.
        self._wider = interval
        self._settling = 0

    def work(self, seconds: float) -> None:
        """The engine spent ``seconds`` on discovery (building probes, reading a frame)."""
        self._work += seconds

    def round_starts(self) -> None:
        """A new round goes out now: the work since the last one (that round's
        probes and the frames they brought back) sets the interval, as a round of
        statistics answers sets the poll interval (:func:`paced_interval`)."""
        self._rounds += 1
        if self._rounds == 1:  # nothing measured yet
            self._work = 0.0
            return
        self.round_work, self._work = self._work, 0.0
        self._settling = max(0, self._settling - 1)
        want = paced_interval(self, self.round_work)
        if want == self.interval:
            return
        log.log(
            logging.WARNING if want > self.configured else logging.INFO,
            "a round of LLDP probes costs the hub %.2f s: probing every %.1f s "
            "(lldp_budget %.2f); links expire and edge ports are trusted that much later",
            self.round_work,
            want,
            self.budget,
        )
        if want < self.interval:
            self._wider = max(self.interval, self._wider if self._settling else 0.0)
            self._settling = SETTLING_ROUNDS
        self.interval = want

    def stretched(self, seconds: float) -> float:
        """A time set in configured intervals (a link timeout, an edge grace), in the
        intervals in use."""
        interval = max(self.interval, self._wider) if self._settling else self.interval
        return seconds * interval / self.configured
