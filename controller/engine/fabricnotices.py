"""What the fabric's events say to the API's watchers: one notice per event."""

from __future__ import annotations

from controller.engine.outputs import EventKind, Notice
from controller.fabric.events import (
    FabricEvent,
    HostLearned,
    HostMoved,
    LinkDown,
    LinkUp,
    SwitchDown,
    SwitchUp,
)
from controller.fabric.model import Dpid, PortRef
from controller.fabric.topology import Topology

__all__ = ["fabric_notice"]


def fabric_notice(event: FabricEvent, topo: Topology) -> Notice | None:
    """The notice of ``event`` (switches and links by their names in ``topo``), or
    None for an event watchers are not told of."""
    match event:
        case SwitchUp(dpid=dpid):
            return Notice(EventKind.SWITCH_UP, topo.label(dpid), attributes=_dpid_attr(dpid))
        case SwitchDown(dpid=dpid):
            return Notice(EventKind.SWITCH_DOWN, topo.label(dpid), attributes=_dpid_attr(dpid))
        case LinkUp(link=lid):
            return Notice(EventKind.LINK_UP, topo.link_name(lid))
        case LinkDown(link=lid, reason=reason):
            return Notice(EventKind.LINK_DOWN, topo.link_name(lid), reason=reason)
        case HostLearned(mac=mac, ipv4=ip, attach=at):
            return Notice(EventKind.HOST_LEARNED, mac, attributes=_host_attrs(ip, at, topo))
        case HostMoved(mac=mac, ipv4=ip, attach=at):
            return Notice(EventKind.HOST_MOVED, mac, attributes=_host_attrs(ip, at, topo))
    return None


def _dpid_attr(dpid: Dpid) -> tuple[tuple[str, str], ...]:
    return (("dpid", f"{dpid:016x}"),)


def _host_attrs(ip: str | None, at: PortRef, topo: Topology) -> tuple[tuple[str, str], ...]:
    return (("ipv4", ip or ""), ("switch", topo.label(at.dpid)), ("port", str(at.port)))
