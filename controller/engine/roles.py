"""Cluster roles of the engine: standby, leader, and the handover between them.

A single controller has no role (the switches' EQUAL role; it always
programs). In a cluster the election makes this node the leader (MASTER on
every switch: it decides and programs) or a standby (SLAVE: it reads, follows
the shared store and observes the fabric through a
:class:`~controller.engine.standby.StandbyObserver`, and writes nothing). On
a takeover the engine is rebuilt as on a restart, except that what the
standby observed (links, ports' up-since times, link rates) seeds the new
state. Beside the takeover's hold of default forwarding (until its switches are
read again) lives a cold restart's (:mod:`controller.engine.restarthold`): a
takeover is a restart in-process, and both end in the same place. Kept apart
from :mod:`controller.engine.engine` to keep each module readable;
:class:`~controller.engine.engine.FabricEngine` has both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from controller.engine.connectivity import Connectivity
from controller.engine.monitor import LinkMonitor
from controller.engine.outputs import EngineOutput, RoleRequest
from controller.engine.polling import StatsPolls
from controller.engine.restarthold import RestartHold
from controller.engine.standby import StandbyObserver
from controller.engine.tablesync import SyncedSwitch, TableSync
from controller.fabric.lldp_auth import LldpSigner
from controller.fabric.topology import Topology

__all__ = ["ClusterRoles"]

log = logging.getLogger("fabricd.engine")


def _always(now: float) -> bool:
    return True


class ClusterRoles:
    # Provided by FabricEngine.
    net: Connectivity
    monitor: LinkMonitor
    sync: TableSync
    signer: LldpSigner
    _connected: set[int]

    # Cluster mode: None = a single controller; else "leader" or "standby".
    cluster_role: str | None = None
    generation: int = 0
    standby: StandbyObserver | None = None
    _may_program: Callable[[float], bool] = staticmethod(_always)
    _reload_due: bool = False
    # A takeover's switches still to be read again, and until when they are waited for.
    _takeover_wait: set[int] | None = None
    _takeover_until: float = 0.0
    # What this node saw of the fabric as a standby, until the takeover's reads end.
    _witness: Topology | None = None
    # A cold restart's hold of default forwarding (decided at the first switch read).
    _restart: RestartHold | None = None

    def _rebuild(self, now: float, *, warm: StandbyObserver | None = None) -> None:
        raise NotImplementedError  # FabricEngine's

    def _new_monitor(self) -> LinkMonitor:
        raise NotImplementedError  # FabricEngine's

    def _new_polls(self) -> StatsPolls:
        raise NotImplementedError  # FabricEngine's

    def join_cluster(self, *, may_program: Callable[[float], bool]) -> None:
        """Cluster mode: a standby that programs nothing until the election says so.

        ``may_program(now)`` is the election's own answer (false as soon as the
        lease may have lapsed), checked before every write to a switch.
        """
        self.cluster_role = "standby"
        self._may_program = may_program
        self.standby = self._observer()
        self.standby.show_hosts(self.net.topo.hosts.values())

    def _observer(self) -> StandbyObserver:
        return StandbyObserver(
            signer=self.signer,
            monitor=self._new_monitor(),
            polls=self._new_polls(),
            link_timeout_s=self.net.config.link_timeout_s,
            lldp_interval_s=self.net.config.lldp_interval_s,
        )

    def set_role(self, role: str, *, generation: int, now: float) -> EngineOutput:
        """The election changed this node's role (or the leader's generation)."""
        if role not in ("leader", "standby"):
            raise ValueError(f"role must be leader or standby, not {role!r}")
        if (role, generation) == (self.cluster_role, self.generation):
            return EngineOutput()
        changed = role != self.cluster_role
        self.cluster_role, self.generation = role, generation
        out = EngineOutput()
        if changed:
            log.info("this controller is now %s (generation %d)", role, generation)
        if changed and role == "leader":
            warm, self.standby = self.standby, None
            self._rebuild(now, warm=warm)
            self._restart = RestartHold(enabled=False)  # the takeover holds on its own
            self._hold_for_takeover(now)
            self._witness = warm.topo if warm is not None and self._takeover_wait else None
        elif changed:  # stepped down: observe from scratch (the switches are read again)
            self._witness = None
            self.standby = self._observer()
            self._rebuild(now)  # shows the stored hosts
        for dpid in sorted(self._connected):
            if role == "leader":
                out.requests.append(RoleRequest(dpid, master=True, generation=generation))
                if changed:
                    out.requests += self.sync.start(dpid, now=now)
            elif changed and self.standby is not None:
                out.requests += self.standby.switch_features(dpid, generation=generation)
            else:
                out.requests.append(RoleRequest(dpid, master=False, generation=generation))
        return out

    def _hold_for_takeover(self, now: float) -> None:
        """Compile default forwarding once the switches connected now are all read
        again, not as each is: switch by switch, the links come back a few at a
        time and every leaf's next hops pass through partial sets (a new spread
        set per spine read: 1,112 flow adds and as many deletes on 8 x 4, growing
        with spines times leaves), while the old leader's tables are right."""
        self._takeover_wait = set(self._connected)
        self._takeover_until = now + 2 * self.sync.timeout_s
        if self._takeover_wait:
            self.net.hold_forwarding("takeover")

    def _first_read(self, done: SyncedSwitch, now: float) -> None:
        """A switch's first read finished, before its forwarding is compiled: logged,
        and a cold restart may start (or prolong) its hold (:mod:`restarthold`)."""
        table = done.table
        log.info(
            "switch %s (%016x) connected: %d ports, %d flows, %d groups kept by the switch",
            done.name or "?",
            done.dpid,
            len(done.ports),
            len(table.flows),
            len(table.groups),
        )
        if self._restart is None:  # (a standby reads no tables: it never comes here)
            self._restart = RestartHold()
        net = self.net
        cap = 4 * net.lldp.stretched(net.config.link_timeout_s)
        if self._restart.switch_read(table, now=now, interval=net.lldp.interval, cap_s=cap):
            log.info("switches hold this controller's routes: forwarding held until discovered")
            net.hold_forwarding("restart")

    def _release_holds(
        self, out: EngineOutput, now: float, *, synced: int | None = None
    ) -> EngineOutput:
        """``out``, with the held forwarding compiled if the takeover's last switch
        was just read (``synced``), went away, or the wait is over; or if a cold
        restart's hold is over."""
        if self._restart is not None and self._restart.due(now):
            out.add_program(self.net.release_forwarding(now=now, holder="restart"))
        wait = self._takeover_wait
        if wait is None:
            return out
        if synced is not None:
            wait.discard(synced)
        wait &= self._connected
        if not wait or now >= self._takeover_until:
            self._takeover_wait = self._witness = None
            out.add_program(self.net.release_forwarding(now=now, holder="takeover"))
        return out

    def witnessed(self) -> tuple[Topology, ...]:
        """The fabric as this node saw it as a standby, while a takeover still reads
        the switches again (names a command may refer to that the new leader's own
        topology does not hold yet); nothing otherwise."""
        return () if self._witness is None else (self._witness,)

    def store_changed(self) -> None:
        """Another node wrote to the shared store: a standby follows at its next tick."""
        if self.cluster_role == "standby":
            self._reload_due = True

    def follow_store(self, *, now: float) -> EngineOutput:
        """A standby reads the shared store now rather than at its next tick (it
        just relayed a write to the leader): a client then reads its own write
        from the node it wrote to."""
        if self.cluster_role == "standby":
            self._reload_due = False
            self._rebuild(now)
        return EngineOutput()

    def writes_allowed(self, now: float) -> bool:
        """Whether anything may be written to a switch now (flow, group, packet-out)."""
        if self.cluster_role is None:
            return True
        return self.cluster_role == "leader" and self._may_program(now)
