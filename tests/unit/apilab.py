"""ApiLab: the API tests' controller - the real engine, publisher and facade on a fake fabric.

Everything behind the gRPC service is the daemon's own code: the
:class:`~controller.engine.engine.FabricEngine` (driven by an
:class:`enginelab.EngineLab` on fake switches), the
:class:`~controller.app.publisher.Publisher` and the
:class:`~controller.api.facade.EngineFacade`. Only the hand-off between
threads differs: :class:`LabHub` runs a write inline in the caller's thread
(under a lock, as the single hub thread would serialise it) and does what
its output asks through the lab, instead of waking a hub over a pipe (the
mailbox has tests of its own). A test can stall the hub (a busy controller)
or make the next facade call fail, to check how the service maps errors.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from enginelab import TRAP_COOKIE, EngineLab, LabHost
from synthetic import leaf_spine

from controller.api.facade import Completed, EngineFacade
from controller.api.server import ApiServer, ApiServerConfig, start_api_server
from controller.app.clock import Clock
from controller.app.publisher import Publisher
from controller.concurrency.eventbus import EventBus
from controller.concurrency.mailbox import DEFAULT_MIN_RUNWAY_S, MailboxTimeout
from controller.devtools.enginedriver import udp_frame
from controller.engine.engine import EngineConfig
from controller.engine.outputs import EngineOutput, EventKind
from controller.fabric.model import FiveTuple, LinkId
from controller.jobs.model import Job
from controller.policy.model import FlowMatch, Policy, PolicyParams, PortRange, Strategy
from controller.store.jobs import JobStore
from controller.store.policies import PolicyView
from controller.telemetry import CapacityConfig, PortCounters

__all__ = [
    "T0",
    "LINK_BPS",
    "ApiLab",
    "LabHub",
    "roce_policy",
    "pinned_policy",
    "weighted_policy",
    "running_server",
    "udp_frame",
]

T0 = 1_700_000_000.0  # wall time of the lab's monotonic 0
LINK_BPS = 10e9


def roce_policy() -> Policy:
    return Policy(
        name="roce",
        priority=100,
        match=(FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),)),),
        strategy=Strategy.LEAST_UTILIZED,
    )


def pinned_policy() -> Policy:
    """A valid policy with every field its strategy allows away from the default."""
    return Policy(
        name="nccl-pinned",
        priority=200,
        match=(
            FlowMatch(
                ip_proto=17,
                dst_ports=(PortRange(4791, 4791),),
                dscp=(26, 46),
                src_hosts=(ipaddress.IPv4Network("10.0.1.0/24"),),
            ),
            FlowMatch(
                ip_proto=6,
                src_ports=(PortRange(40000, 40100),),
                dst_ports=(PortRange(29500, 29599), PortRange(30000, 30010)),
                dst_hosts=(
                    ipaddress.IPv4Network("10.0.2.0/24"),
                    ipaddress.IPv4Network("10.0.3.7/32"),
                ),
            ),
        ),
        strategy=Strategy.PINNED,
        params=PolicyParams(
            congestion_threshold=0.7,
            clear_threshold=0.5,
            rebalance_period_s=3.0,
            min_move_interval_s=1.5,
            idle_timeout_s=30,
        ),
        pinned_path=("leaf1", "spine2", "leaf2"),
        fallback=Strategy.WIDEST,
        description="NCCL rings pinned through spine2",
    )


def weighted_policy() -> Policy:
    return Policy(
        name="roce-weighted",
        priority=100,
        match=(FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),)),),
        strategy=Strategy.WEIGHTED,
        weights=(("spine1", 3.0), ("spine2", 1.0)),
    )


class LabHub:
    """The hub, inline: serialises writes, sends their output through the lab."""

    def __init__(self, lab: ApiLab) -> None:
        self._lab = lab
        self.lock = threading.RLock()
        self.gate = threading.Event()  # cleared: the hub is busy and takes nothing
        self.gate.set()

    def call(self, work: Callable[[], Completed], *, timeout: float) -> Any:
        # As the mailbox: work whose caller has (nearly) given up is never started.
        deadline = time.monotonic() + timeout
        if not self.gate.wait(timeout) or time.monotonic() > deadline - DEFAULT_MIN_RUNWAY_S:
            raise MailboxTimeout(f"controller did not take the request within {timeout:.3g} s")
        with self.lock:
            done = work()
            self._lab.run(done.output)
            return done.result


class _Recorder:
    """The facade as the service sees it, recording calls and able to fail the next one."""

    def __init__(self, facade: EngineFacade) -> None:
        self._facade = facade
        self.calls: list[str] = []
        self.fail_next: BaseException | None = None

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._facade, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if self.fail_next is not None:
                exc, self.fail_next = self.fail_next, None
                raise exc
            return target(*args, **kwargs)

        return call


class ApiLab:
    """Two spines, two leaves, two hosts per leaf; started, hosts learned, warm-ups over."""

    def __init__(self, *, policies: tuple[Policy, ...] = ()) -> None:
        config = EngineConfig(
            capacity=CapacityConfig.from_config(LINK_BPS / 1e6, {}),
            default_demand_bps=LINK_BPS,
            poll_interval_s=1.0,
        )
        self.lab = EngineLab(leaf_spine(2, 2), config=config, policies=policies)
        self.engine = self.lab.engine
        clock = Clock(mono=lambda: self.lab.now, wall=lambda: T0 + self.lab.now)
        self.bus = EventBus(ring_size=256)
        self.publisher = Publisher(self.engine, bus=self.bus, metrics=self.lab.metrics, clock=clock)
        self.lab.on_output = self.publisher.absorb
        self.hub = LabHub(self)
        self.real = EngineFacade(
            engine=self.engine,
            hub=self.hub,
            publisher=self.publisher,
            mono=clock.mono,
            metrics=self.lab.metrics,
        )
        self.facade = _Recorder(self.real)
        with self.hub.lock:
            self.lab.ready()
            self.publisher.publish()

    # ------------------------------------------------------------ the lab
    @property
    def hosts(self) -> list[LabHost]:
        return self.lab.hosts

    @property
    def calls(self) -> list[str]:
        return self.facade.calls

    def fail_next(self, exc: BaseException) -> None:
        self.facade.fail_next = exc

    def run(self, out: EngineOutput) -> EngineOutput:
        """Do what the engine asked (hub thread) and publish, as the shim's loops do."""
        with self.hub.lock:
            total = self.lab.run(out)
            self.publisher.publish()
            return total

    def step(self, seconds: float = 0.5) -> None:
        """Let time pass by one tick (polls, rebalancing), then publish."""
        with self.hub.lock:
            self.lab.advance(seconds)
            self.lab.tick()
            self.publisher.publish()

    def publish(self, kind: EventKind, subject: str, **kw: Any) -> None:
        """An event straight onto the bus (for watch tests)."""
        self.bus.publish(kind, subject, time=T0 + self.lab.now, **kw)

    def place_flow(self, src: LabHost, dst: LabHost, *, sport: int = 49152, dscp: int = 26) -> int:
        """The first packet of a RoCE flow reaches its class trap: the engine places it."""
        ft = FiveTuple(src.ip, dst.ip, 17, sport, 4791)
        data = udp_frame(ft, src_mac=src.mac, dst_mac=dst.mac, dscp=dscp)
        with self.hub.lock:
            self.lab.packet_in(src.port, data, cookie=TRAP_COOKIE)
            self.publisher.publish()
        flow = self.engine.placer.te.flow_by_five_tuple(ft)
        assert flow is not None, "the flow was not placed"
        return flow.flow_id

    def set_rate(self, link: LinkId, bps: float, *, seconds: float = 6.0) -> None:
        """Traffic of ``bps`` on ``link`` for ``seconds`` (counters grow, polls see it)."""
        with self.hub.lock:
            step = 0.25
            for _ in range(int(seconds / step)):
                for ref, field in ((link.src, "tx_bytes"), (link.dst, "rx_bytes")):
                    have = self.lab.counters.get(ref, PortCounters())
                    grown = getattr(have, field) + int(bps * step / 8)
                    packets = have.rx_packets + int(bps * step / 8 / 1000)
                    self.lab.counters[ref] = replace(have, **{field: grown, "rx_packets": packets})
                self.lab.advance(step)
                self.lab.tick()
            self.publisher.publish()

    def link(self, a: str, b: str) -> LinkId:
        return self.lab.cable(a, b)

    def name_of(self, link: LinkId) -> str:
        return self.engine.net.topo.link_name(link)

    @property
    def policies(self) -> dict[str, Policy]:
        return {p.name: p for p in PolicyView(self.lab.store).list()}

    @property
    def jobs(self) -> dict[str, Job]:
        return {j.name: j for j in JobStore(self.lab.store).list()}

    @property
    def flows(self) -> tuple[Any, ...]:
        return self.publisher.views.flows


@contextlib.contextmanager
def running_server(facade: Any, **config: Any) -> Iterator[ApiServer]:
    """An API server on a free loopback port, stopped afterwards."""
    server = start_api_server(facade, ApiServerConfig(listen="127.0.0.1:0", **config))
    try:
        yield server
    finally:
        server.stop(grace=0)
