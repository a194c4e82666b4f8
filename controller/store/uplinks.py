"""Leaves' lost uplinks in the store, so a restarted controller names their routes as before.

A leaf's spread set is named after every uplink it is cabled to, lost ones
included (:func:`controller.flowprog.spread.degraded_set`): a lost spine then
costs each leaf a few entries, not a rename of every route. A controller that
restarts alone saw none of those uplinks go: it would name each affected
leaf's set after the uplinks that are up and rewrite all its routes (680 flow
and 44 group mods on 4 spines x 4 leaves; hundreds of thousands at 64 x 512).
One document per lost uplink, named by the leaf's dpid and port, holding the
spine it led to. This module remembers what the topology reported, nothing
more: on reconnection the topology keeps only what still holds (the port
exists and carries no link), and discovery forgets an uplink cabled again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.fabric.model import Dpid, PortNo, dpid_str
from controller.store.documents import DocumentStore
from controller.store.views import Codec, TypedView

__all__ = ["LostUplink", "UPLINK_CODEC", "UplinkView"]

LostUplinks = Mapping[Dpid, Sequence[tuple[PortNo, Dpid]]]  # leaf -> (port, spine), sorted


@dataclass(frozen=True, order=True)
class LostUplink:
    dpid: Dpid  # the leaf
    port: PortNo
    spine: Dpid  # where the port led


def _name(u: LostUplink) -> str:
    return f"{dpid_str(u.dpid)}/{u.port}"


def _body(u: LostUplink) -> dict[str, Any]:
    return {"dpid": dpid_str(u.dpid), "port": u.port, "spine": dpid_str(u.spine)}


def _from_body(body: dict[str, Any]) -> LostUplink:
    port = body["port"]
    if not isinstance(port, int) or isinstance(port, bool) or port < 1:
        raise ValueError(f"port: expected a positive integer, got {port!r}")
    return LostUplink(int(str(body["dpid"]), 16), port, int(str(body["spine"]), 16))


UPLINK_CODEC: Codec[LostUplink] = Codec(
    kind="uplink", name_of=_name, to_body=_body, from_body=_from_body
)


class UplinkView(TypedView[LostUplink]):
    """Lost uplinks in ``store``, per leaf as the topology holds them."""

    def __init__(self, store: DocumentStore) -> None:
        super().__init__(store, UPLINK_CODEC)

    def lost(self) -> dict[Dpid, tuple[tuple[PortNo, Dpid], ...]]:
        """Per leaf, its lost uplinks (port, spine), sorted by port."""
        found: dict[Dpid, list[tuple[PortNo, Dpid]]] = {}
        for u in sorted(self.list()):
            found.setdefault(u.dpid, []).append((u.port, u.spine))
        return {dpid: tuple(lost) for dpid, lost in found.items()}

    def save(self, lost: LostUplinks) -> int:
        """Make the stored uplinks exactly ``lost`` (one write of what differs);
        returns how many documents changed."""
        return self.sync(
            [LostUplink(dpid, port, spine) for dpid, ups in lost.items() for port, spine in ups]
        )
