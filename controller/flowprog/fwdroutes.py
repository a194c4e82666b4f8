"""The routes of default forwarding: how one switch forwards towards the hosts
of one destination switch, given its next hops.

A route is a plain output, a local-repair bounce group (a spine's only hop into
the destination), a spread-table set (:mod:`controller.flowprog.spread`;
derived from the switch's full set when a few next hops are missing) or a
SELECT group (spreading off, a detour through a leaf, or a set whose id is
taken on the switch). :class:`RouteView` derives them from one compilation's
inputs; :class:`~controller.flowprog.forwarding.ForwardingCompiler` keeps them
between compilations and assembles switches' entries from them, each switch's
as a :class:`SwitchForwarding`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from controller.fabric.model import Dpid, Host, LinkId, PortNo
from controller.flowprog.entries import (
    Action,
    FlowEntry,
    GroupEntry,
    Match,
    group_action,
    output,
)
from controller.flowprog.groups import select_group
from controller.flowprog.repair import ALWAYS_LIVE, bounce_group, bounces
from controller.flowprog.spread import NextHopSet, degraded_set, derived_set, next_hop_set
from controller.flowprog.tables import OwnerNeeds

__all__ = ["ClassTrap", "ForwardingInputs", "Route", "RouteView", "SetKey", "SwitchForwarding"]


@dataclass(frozen=True)
class ClassTrap:
    """Send matching packets from edge ports to the controller at ``priority``."""

    priority: int
    match: Match


@dataclass(frozen=True)
class ForwardingInputs:
    switches: Sequence[Dpid]  # every switch to compile for
    links: Sequence[LinkId]  # up links
    hosts: Sequence[Host]
    edge_ports: Callable[[Dpid], Sequence[PortNo]]
    drained: frozenset[LinkId] = frozenset()
    traps: Sequence[ClassTrap] = ()
    single_path: bool = False  # catch-all strategy "shortest": one next hop, no group
    # catch-all strategy "weighted": weight of the bucket towards a neighbour switch
    neighbour_weight: Callable[[Dpid], float] | None = None
    packet_in_pps: int = 0  # 0 = no meter on packet-ins
    spread_l4: bool = True  # TCP/UDP over several next hops by source-port bits
    local_repair: bool = True  # a spine's failed last hop bounces packets to another spine
    # whether a switch is a leaf (may face hosts); by default: it has edge ports
    host_facing: Callable[[Dpid], bool] | None = None
    # (port, spine) of a switch's uplinks lost (the port is still there): its spread
    # and local repair keep their place (spread.degraded_set); None: none known
    lost_uplinks: Callable[[Dpid], Sequence[tuple[PortNo, Dpid]]] | None = None


_NONE: frozenset[PortNo] = frozenset()
_V = TypeVar("_V")


def _kept(cache: Mapping[Dpid, _V], switches: set[Dpid]) -> dict[Dpid, _V]:
    return {d: v for d, v in cache.items() if d in switches}


SetKey = tuple[int, bool]  # a spread set on a switch: its metadata id, degraded in place


@dataclass(frozen=True)
class SwitchForwarding:
    """One switch's default forwarding as owners' needs: ``routes``, its fixed entries
    and one entry per host (~1,000 on a leaf at 64 x 512); ``sets``, each spread set
    it claims (~500 entries and ~65 groups for a leaf's full set at 64 spines); and
    ``tail``, the rest (local repair, class traps, the routes' own groups, the
    meter). A lost spine changes each leaf's sets, not its routes: the large parts
    then come back as the very objects they were, and only what changed is compared
    entry by entry."""

    routes: OwnerNeeds
    tail: OwnerNeeds
    sets: Mapping[SetKey, OwnerNeeds] = field(default_factory=dict)

    def combined(self) -> OwnerNeeds:
        """Every part as one owner's needs (entries and groups in the order of the
        parts: routes, sets, tail)."""
        parts = (self.routes, *self.sets.values(), self.tail)
        flows: dict[Dpid, tuple[FlowEntry, ...]] = {}
        groups: dict[Dpid, tuple[GroupEntry, ...]] = {}
        for part in parts:
            for dpid, entries in part.flows.items():
                flows[dpid] = flows.get(dpid, ()) + entries
            for dpid, shared in part.groups.items():
                have = {g.group_id for g in groups.get(dpid, ())}
                groups[dpid] = groups.get(dpid, ()) + tuple(
                    g for g in shared if g.group_id not in have
                )
        return OwnerNeeds(flows=flows, groups=groups, meters=self.tail.meters)


@dataclass(frozen=True)
class Route:
    """How one switch forwards towards the hosts of one destination switch, and
    the next hops it was derived from (a route is redone when they change)."""

    ports: tuple[PortNo, ...]
    distance: int
    actions: tuple[Action, ...]
    groups: tuple[GroupEntry, ...] = ()  # what the actions use, in installation order
    spread: NextHopSet | None = None  # the set the actions name (claimed per switch)
    fallback: tuple[Action, ...] = ()  # the set's SELECT group, if its id is taken
    fallback_groups: tuple[GroupEntry, ...] = ()
    bounce_port: PortNo | None = None  # local repair: tagged packets delivered here


class RouteView:
    """What routes are derived from, for one compilation: links by switch, which
    switches face hosts, drained ports."""

    def __init__(
        self, inp: ForwardingInputs, last: RouteView | None = None, lost: Iterable[LinkId] = ()
    ) -> None:
        """``last``: the last compilation's view, whose links were ``inp.links`` and
        ``lost`` (since then links only went away): its peers are kept but for the
        switches those links leave (a lost spine: 1,024 of 65,536 links at 64 x 512)."""
        self.inp = inp
        # switch -> port -> peer
        self.peers: dict[Dpid, dict[PortNo, Dpid]] = defaultdict(dict)
        peers = self.peers
        if last is None:
            for lid in inp.links:
                peers[lid.src.dpid][lid.src.port] = lid.dst.dpid
        else:
            peers.update(last.peers)  # shared: each switch's map is copied before a change
            left: dict[Dpid, dict[PortNo, Dpid]] = {}
            for lid in lost:
                src = lid.src.dpid
                if (out := left.get(src)) is None:
                    out = left[src] = dict(peers.get(src, {}))
                out.pop(lid.src.port, None)
            peers.update(left)
        facing = inp.host_facing or (lambda d: bool(inp.edge_ports(d)))
        self.edge = {d: facing(d) for d in inp.switches}
        self.drained = {(lid.src.dpid, lid.src.port) for lid in inp.drained}
        # Per switch, from its peers and their roles only: kept from ``last`` for the
        # switches whose peers it shares when no switch's role changed (a spine's
        # 512 peers are not walked again when a leaf loses a link).
        self._peer_keys: dict[Dpid, tuple[tuple[PortNo, Dpid, bool], ...]] = {}
        self._spines: dict[Dpid, tuple[tuple[PortNo, Dpid], ...]] = {}
        self._leafward: dict[Dpid, dict[PortNo, Dpid]] = {}  # ports towards edge switches
        if last is not None and last.edge == self.edge:
            same = {d for d, out in last.peers.items() if peers.get(d) is out}
            self._peer_keys = _kept(last._peer_keys, same)
            self._spines = _kept(last._spines, same)
            self._leafward = _kept(last._leafward, same)
        self._cabled_spines: dict[Dpid, tuple[tuple[PortNo, Dpid], ...]] = {}
        self._cabled: dict[Dpid, tuple[PortNo, ...]] = {}
        self._uplinks: dict[Dpid, tuple[PortNo, ...]] = {}
        self._routes: dict[
            tuple[Dpid, tuple[PortNo, ...]],
            tuple[frozenset[Dpid], dict[tuple[int, bool], Route]],
        ] = {}

    def switch_key(self, dpid: Dpid) -> Hashable:
        """Everything about ``dpid`` its routes and fixed entries depend on besides
        their next hops: while it stays the same, so do they."""
        peer_key = self._peer_keys.get(dpid)
        if peer_key is None:
            peers = self.peers.get(dpid, {})
            peer_key = self._peer_keys[dpid] = tuple(
                sorted((p, n, self.edge.get(n, True)) for p, n in peers.items())
            )
        return (
            self.edge[dpid],
            peer_key,
            self.drained_ports(dpid),
            tuple(self.inp.edge_ports(dpid)) if self.inp.traps else (),
            self.cabled(dpid),
        )

    def route(self, dpid: Dpid, dst: Dpid, ports: tuple[PortNo, ...], distance: int) -> Route:
        inp = self.inp
        if len(ports) == 1 or inp.single_path:
            port = ports[0]
            if inp.local_repair and bounces(
                faces_hosts=self.edge[dpid],
                next_switch=self.peers[dpid][port],
                destination=dst,
            ):
                bounce = bounce_group(port)  # watches ALWAYS_LIVE: that goes in first
                groups = (ALWAYS_LIVE, bounce)
                return Route(
                    ports, distance, (group_action(bounce.group_id),), groups, bounce_port=port
                )
            return Route(ports, distance, (output(port),))
        # A detour through another leaf exists only while links are missing: it
        # keeps its SELECT group, so a transient state (a rediscovering fabric)
        # never adds and removes spread-table entries.
        # Many destinations share one route: kept per (switch, next hops), then per
        # distance and detour (one hash of the ports per call).
        via, routes = self._made(dpid, ports)
        detour = len(via) > 1 or (bool(via) and dst not in via)
        route = routes.get((distance, detour))
        if route is None:
            route = routes[(distance, detour)] = self._spread(dpid, ports, distance, detour)
        return route

    def alike(self, dpid: Dpid, ports: tuple[PortNo, ...]) -> bool:
        """Whether :meth:`route` over ``ports`` is one route towards every destination
        at a distance (neither a bounce nor a detour that depends on where it goes)."""
        if len(ports) == 1 or self.inp.single_path:
            return False
        return len(self._made(dpid, ports)[0]) != 1

    def _made(
        self, dpid: Dpid, ports: tuple[PortNo, ...]
    ) -> tuple[frozenset[Dpid], dict[tuple[int, bool], Route]]:
        """The edge switches ``ports`` lead to and the routes made over them."""
        made = self._routes.get((dpid, ports))
        if made is None:
            made = self._routes[(dpid, ports)] = (self.edge_peers(dpid, ports), {})
        return made

    def _spread(self, dpid: Dpid, ports: tuple[PortNo, ...], distance: int, detour: bool) -> Route:
        weights = self._weights(dpid, ports)
        select = select_group(ports, weights=weights)
        plain = ((group_action(select.group_id),), (select,))
        hs = None
        if self.inp.spread_l4 and not detour:
            hs = self._spread_set(dpid, ports, weights, distance)
        if hs is None:
            return Route(ports, distance, *plain)
        return Route(ports, distance, hs.route_actions(), (), hs, *plain)

    def _spread_set(
        self,
        dpid: Dpid,
        ports: tuple[PortNo, ...],
        weights: dict[PortNo, int] | None,
        distance: int,
    ) -> NextHopSet | None:
        """The set for ``ports``: derived from the switch's set over all its cabled
        uplinks when ``ports`` are those less a few, else its own. Less the same ports
        towards every destination (uplinks lost or drained: ``ports`` are all the
        usable ones), it is degraded in place: named as that set, so that no route
        changes; less others too (a link lost further on), a set of its own name,
        which the ports lacking towards every destination do not change."""
        if weights is None:
            cabled = self.cabled(dpid)
            if len(cabled) > len(ports) and set(ports) < set(cabled):
                parent = next_hop_set(cabled, weights=None, distance=distance, dpid=dpid)
                if parent is not None:
                    usable = self.uplinks(dpid)
                    if ports == usable:
                        hs = degraded_set(parent, ports)
                    else:
                        lacking = set(cabled).difference(usable)
                        hs = derived_set(parent, ports, lacking=tuple(lacking))
                    if hs is not None:
                        return hs
        return next_hop_set(ports, weights=weights, distance=distance, dpid=dpid)

    def cabled(self, dpid: Dpid) -> tuple[PortNo, ...]:
        """``dpid``'s uplinks, up or lost, drained or not (sorted)."""
        found = self._cabled.get(dpid)
        if found is None:
            found = self._cabled[dpid] = tuple(port for port, _ in self.cabled_spines(dpid))
        return found

    def cabled_spines(self, dpid: Dpid) -> tuple[tuple[PortNo, Dpid], ...]:
        """(port, spine) of ``dpid``'s uplinks, up or lost (by port)."""
        found = self._cabled_spines.get(dpid)
        if found is None:
            up = self.spines(dpid)
            lost = self.inp.lost_uplinks(dpid) if self.inp.lost_uplinks is not None else ()
            found = self._cabled_spines[dpid] = tuple(sorted({*up, *lost})) if lost else up
        return found

    def uplinks(self, dpid: Dpid) -> tuple[PortNo, ...]:
        """``dpid``'s undrained ports towards switches that face no hosts (spines)."""
        found = self._uplinks.get(dpid)
        if found is None:
            drained = self.drained_ports(dpid)
            found = self._uplinks[dpid] = tuple(
                port for port, _ in self.spines(dpid) if port not in drained
            )
        return found

    def spines(self, dpid: Dpid) -> tuple[tuple[PortNo, Dpid], ...]:
        """``dpid``'s ports towards switches that face no hosts, with those switches."""
        found = self._spines.get(dpid)
        if found is None:
            peers = self.peers.get(dpid, {}).items()
            found = self._spines[dpid] = tuple(
                sorted((p, n) for p, n in peers if not self.edge.get(n, True))
            )
        return found

    def drained_ports(self, dpid: Dpid) -> frozenset[PortNo]:
        """``dpid``'s ports whose links are drained."""
        if not self.drained:
            return _NONE
        return frozenset(p for p in self.peers.get(dpid, {}) if (dpid, p) in self.drained)

    def edge_peers(self, dpid: Dpid, ports: tuple[PortNo, ...]) -> frozenset[Dpid]:
        """The switches with edge ports (leaves) that ``ports`` lead to (:meth:`route`
        keeps them per port set, which many destinations share)."""
        leafward = self._leafward.get(dpid)
        if leafward is None:
            edge = self.edge
            peers = self.peers.get(dpid, {}).items()
            leafward = self._leafward[dpid] = {p: n for p, n in peers if edge.get(n, True)}
        if not leafward:
            return frozenset()  # (a leaf's uplinks: every one to a spine)
        return frozenset(leafward[p] for p in ports if p in leafward)

    def _weights(self, dpid: Dpid, ports: tuple[PortNo, ...]) -> dict[PortNo, int] | None:
        weigh = self.inp.neighbour_weight
        if weigh is None:
            return None
        weights = {p: round(weigh(self.peers[dpid][p]) * 10) for p in ports}
        return weights if any(w > 0 for w in weights.values()) else None

    def return_key(self, dpid: Dpid) -> tuple[tuple[tuple[PortNo, Dpid], ...], frozenset[PortNo]]:
        """What a leaf's tagged-return entries (local repair) depend on: its uplinks
        (port, spine), lost ones included (a lost port's failover buckets are skipped:
        they stay, and a lost spine rewrites none), and which of them are drained."""
        return self.cabled_spines(dpid), self.drained_ports(dpid)
