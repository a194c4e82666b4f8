"""Drained links in the store, so a restarted controller or a new leader keeps them.

An operator's drain is a decision that must outlive the process that took
it: a restarted controller that forgot it would move traffic back onto a
link under maintenance. One document per drained link direction, named by
the link's dpids and ports (labels may change, dpids do not), with the label
the operator saw kept for display. This module must not decide what a drain
does to forwarding: the engine re-applies stored drains to links as they are
discovered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from controller.fabric.model import LinkId, PortRef, dpid_str
from controller.store.documents import DocumentStore
from controller.store.views import Codec, TypedView

__all__ = ["Drain", "DRAIN_CODEC", "DrainView", "drain_name"]


def drain_name(link: LinkId) -> str:
    """``0000000000000001/3->0000000000000002/1``: stable across switch renames."""
    return f"{link.src}->{link.dst}"


@dataclass(frozen=True)
class Drain:
    link: LinkId
    label: str = ""  # the link's name when it was drained (``leaf1/3->spine1/1``)


def _drain_body(drain: Drain) -> dict[str, Any]:
    src, dst = drain.link.src, drain.link.dst
    return {
        "src_dpid": dpid_str(src.dpid),
        "src_port": src.port,
        "dst_dpid": dpid_str(dst.dpid),
        "dst_port": dst.port,
        "label": drain.label,
    }


def _drain_from_body(body: dict[str, Any]) -> Drain:
    src = PortRef(int(str(body["src_dpid"]), 16), int(body["src_port"]))
    dst = PortRef(int(str(body["dst_dpid"]), 16), int(body["dst_port"]))
    return Drain(LinkId(src, dst), label=str(body.get("label", "")))


DRAIN_CODEC: Codec[Drain] = Codec(
    kind="drain",
    name_of=lambda d: drain_name(d.link),
    to_body=_drain_body,
    from_body=_drain_from_body,
)


class DrainView(TypedView[Drain]):
    """Drained links in ``store``."""

    def __init__(self, store: DocumentStore) -> None:
        super().__init__(store, DRAIN_CODEC)

    def links(self) -> set[LinkId]:
        return {d.link for d in self.list()}

    def set_drained(self, drains: Iterable[Drain], *, drained: bool) -> int:
        """Record (or forget) several link directions in one write, e.g. both
        directions of a cable; returns the store revision after it."""
        items = list(drains)
        if drained:
            return self.store.batch(
                puts=[("drain", drain_name(d.link), _drain_body(d)) for d in items]
            )
        return self.store.batch(deletes=[("drain", drain_name(d.link)) for d in items])
