"""The entries of default forwarding towards hosts, kept per what they depend on.

Made once per (hosts, actions) and handed back as the very same tuples while
nothing they depend on changes: switches that reach a destination alike share
them, and a recompilation that changes nothing for a destination costs an
identity check downstream (:mod:`controller.flowprog.forwarding`).
"""

from __future__ import annotations

import functools

from controller.fabric.model import Dpid, PortNo
from controller.flowprog.entries import (
    Action,
    Cookie,
    CookieKind,
    EntryKey,
    FlowEntry,
    GroupEntry,
    Match,
    output,
)
from controller.flowprog.repair import delivery_entry, return_entries

__all__ = [
    "HOST_COOKIE",
    "PRIO_HOST",
    "deliveries",
    "host_entries",
    "host_route_key",
    "own_entries",
    "returns",
    "route_entries",
]

PRIO_HOST = 20000
HOST_COOKIE = Cookie(CookieKind.HOST_ROUTE).encode()  # host routes, their sets and repair


@functools.lru_cache(maxsize=1 << 16)
def host_route_key(mac: str) -> EntryKey:
    """Where a switch's default route to the host with ``mac`` sits in its table.

    Kept per MAC: tables store the very key object that lookups bring, so a hit is
    an identity check instead of comparing matches field by field (this runs on
    every switch of every new flow's path).
    """
    return (0, PRIO_HOST, Match.of(eth_dst=mac))


@functools.lru_cache(maxsize=1 << 16)
def host_entries(macs: tuple[str, ...], actions: tuple[Action, ...]) -> tuple[FlowEntry, ...]:
    """The routes to the hosts ``macs`` of one switch by ``actions``.

    Kept per (hosts, actions): the switches that reach a destination alike share
    the entries, and a recomputation of default forwarding gets back the very
    entries it made before wherever nothing changed, which the desired tables
    recognise by identity (a lost link then costs work where routes changed).
    """
    return tuple(FlowEntry(PRIO_HOST, host_route_key(mac)[2], actions, HOST_COOKIE) for mac in macs)


@functools.lru_cache(maxsize=1 << 14)
def own_entries(hosts: tuple[tuple[str, PortNo], ...]) -> tuple[FlowEntry, ...]:
    """A switch's entries to its own ``hosts`` (mac, port): kept as routes' are."""
    return tuple(e for mac, port in hosts for e in host_entries((mac,), (output(port),)))


@functools.lru_cache(maxsize=1 << 14)
def deliveries(macs: tuple[str, ...], port: PortNo) -> tuple[FlowEntry, ...]:
    """A spine's repair entries delivering tagged packets to ``macs`` (kept as routes are)."""
    return tuple(delivery_entry(mac, port, cookie=HOST_COOKIE) for mac in macs)


def route_entries(
    macs: tuple[str, ...], actions: tuple[Action, ...], bounce: PortNo | None
) -> tuple[FlowEntry, ...]:
    """A switch's entries towards the hosts ``macs`` by ``actions`` (and local repair's
    deliveries to them when its hop bounces)."""
    entries = host_entries(macs, actions)
    return entries if bounce is None else entries + deliveries(macs, bounce)


@functools.lru_cache(maxsize=4096)
def returns(
    uplinks: tuple[tuple[PortNo, Dpid], ...], drained: frozenset[PortNo]
) -> tuple[tuple[FlowEntry, ...], tuple[GroupEntry, ...]]:
    """A leaf's tagged-return entries, kept per uplinks (leaves wired alike share
    them, and a recomputation gets the same objects back)."""
    entries, groups = return_entries(dict(uplinks), drained=drained, cookie=HOST_COOKIE)
    return tuple(entries), tuple(groups)
