"""Secrets a cluster's controllers share through their store (the LLDP key).

A standby checks the LLDP probes the leader sends, so every controller of a
cluster needs the same signing key; the first node to start creates it with a
create-only write, every other node reads it. The store is the trust boundary
already (it holds policies and jobs), so the key is kept there as hex. This
module only creates and reads keys; it never logs them.
"""

from __future__ import annotations

import os

from controller.errors import AlreadyExists, NotFound
from controller.store.documents import Body, DocumentStore, StoreDamaged

__all__ = ["shared_secret"]

_KIND = "secret"


def shared_secret(store: DocumentStore, name: str, *, nbytes: int = 32) -> bytes:
    """The secret ``name``, created (``nbytes`` random bytes) if no node made it yet."""
    for _ in range(3):  # create-or-read races with a node deleting it: bounded
        try:
            return _decode(store.get(_KIND, name).body, name)
        except NotFound:
            pass
        try:
            store.put(_KIND, name, {"hex": os.urandom(nbytes).hex()}, expected_version=0)
        except AlreadyExists:
            continue  # another node created it first: read theirs
    return _decode(store.get(_KIND, name).body, name)


def _decode(body: Body, name: str) -> bytes:
    try:
        key = bytes.fromhex(str(body.get("hex")))
    except ValueError:
        key = b""
    if len(key) < 16:
        raise StoreDamaged(
            f"stored secret {name!r} is damaged (expected hex of >= 16 bytes); "
            f"delete it and restart every controller"
        )
    return key
