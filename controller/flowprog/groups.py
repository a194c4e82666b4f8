"""Groups named by their contents.

A group's id is derived from what it does (its type and buckets), so the same
need always maps to the same id: after a controller restart the groups a
switch kept are recognised without any saved allocation table, owners that
need the same spread share one group, and a changed need is a *new* group
that can be installed before the old one is retired (make-before-break).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from functools import lru_cache

from controller.flowprog.entries import Bucket, GroupEntry, GroupType, Output

__all__ = ["select_group", "failover_group", "failover_chain", "group_id_for"]

# Id ranges per group type keep ids readable in dump-groups output.
_RANGE = {GroupType.SELECT: 0x10000000, GroupType.FAST_FAILOVER: 0x20000000}


def group_id_for(gtype: GroupType, buckets: Sequence[Bucket]) -> int:
    """CRC of the text ``repr((gtype.value, tuple(buckets)))``, each bucket's text
    made once (a lost spine's failover chains have 63 buckets each, all new)."""
    texts = ", ".join(map(_bucket_text, buckets))
    canon = f"({gtype.value!r}, ({texts}{',' if len(buckets) == 1 else ''}))".encode()
    return _RANGE.get(gtype, 0x30000000) | (zlib.crc32(canon) & 0x0FFFFFFF)


@lru_cache(maxsize=1 << 14)
def _bucket_text(bucket: Bucket) -> str:
    return repr(bucket)


def select_group(ports: Sequence[int], *, weights: Mapping[int, int] | None = None) -> GroupEntry:
    """ECMP over ``ports``: a SELECT group with a live-watched bucket per port.

    Open vSwitch skips buckets whose watch port is down, so the data plane stops
    hashing onto a dead uplink before the controller re-derives anything.
    """
    if not weights or all(w == 1 for w in weights.values()):
        return _plain_select(tuple(ports))  # (every weight 1: the same group)
    return _select(ports, weights)


@lru_cache(maxsize=4096)
def _plain_select(ports: tuple[int, ...]) -> GroupEntry:
    """One value per port set: default forwarding without the spread table asks for
    the same group on every route of a switch (hundreds of thousands at 64 x 512)."""
    return _select(ports, {})


def _select(ports: Sequence[int], weights: Mapping[int, int]) -> GroupEntry:
    buckets = tuple(
        Bucket(actions=(Output(p),), weight=max(1, int(weights.get(p, 1))), watch_port=p)
        for p in sorted(ports)
        if weights.get(p, 1) > 0
    )
    if not buckets:
        raise ValueError(f"select group over {list(ports)} has no bucket with a positive weight")
    return GroupEntry(group_id_for(GroupType.SELECT, buckets), GroupType.SELECT, buckets)


def failover_group(primary: int, backup: int) -> GroupEntry:
    """Forward on ``primary`` while it is up, else on ``backup`` (repaired in the switch)."""
    return failover_chain((primary, backup))


def failover_chain(ports: Sequence[int]) -> GroupEntry:
    """Forward on the first of ``ports`` that is up, each bucket watching its port."""
    return _failover_chain(tuple(ports))


@lru_cache(maxsize=4096)
def _failover_chain(ports: tuple[int, ...]) -> GroupEntry:
    """Content-named, so one value per port sequence (computed once, not per flow)."""
    if not ports:
        raise ValueError("a failover chain needs at least one port")
    buckets = tuple(Bucket(actions=(Output(p),), watch_port=p) for p in ports)
    return GroupEntry(
        group_id_for(GroupType.FAST_FAILOVER, buckets), GroupType.FAST_FAILOVER, buckets
    )
