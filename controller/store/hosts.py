"""Learned hosts in the store, and the host file of schema 1 they replace.

Switches keep their flows while the controller is away (fail-secure), but a
restarted controller (or a standby taking over) would not know the hosts
those flows lead to, and hosts whose traffic already flows never send it a
packet to learn from. Restoring them lets the first reconcile keep every host
route in place. One document per host, named by its MAC. The old JSON host
file (``hosts.json``) is read once to migrate it, then kept as
``hosts.json.migrated``. This module must not decide which hosts are real:
it remembers what discovery learned.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from controller.fabric.model import Host, PortRef
from controller.store.documents import DocumentStore, StoreError
from controller.store.views import Codec, TypedView

__all__ = ["HOST_CODEC", "HostView", "load_hosts", "save_hosts", "migrate_hosts_file"]

log = logging.getLogger(__name__)

_FILE_VERSION = 1


def _host_body(host: Host) -> dict[str, Any]:
    return {"mac": host.mac, "ipv4": host.ipv4, "dpid": host.attach.dpid, "port": host.attach.port}


def _host_from_body(body: dict[str, Any]) -> Host:
    ipv4 = body.get("ipv4")
    if ipv4 is not None and not isinstance(ipv4, str):
        raise ValueError(f"ipv4: expected a string, got {ipv4!r}")
    # last_seen 0: remembered from an earlier run, not seen since.
    return Host(
        mac=str(body["mac"]),
        ipv4=ipv4,
        attach=PortRef(int(body["dpid"]), int(body["port"])),
        last_seen=0.0,
    )


HOST_CODEC: Codec[Host] = Codec(
    kind="host", name_of=lambda h: h.mac, to_body=_host_body, from_body=_host_from_body
)


class HostView(TypedView[Host]):
    """Hosts in ``store``; :meth:`sync` writes only what changed."""

    def __init__(self, store: DocumentStore) -> None:
        super().__init__(store, HOST_CODEC)


# --------------------------------------------------------------------------- schema 1 file


def load_hosts(path: Path) -> list[Host]:
    """Hosts saved by :func:`save_hosts`; an absent file is an empty list."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable host table: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != _FILE_VERSION:
        raise ValueError(f"{path}: unknown host table format")
    items = doc.get("hosts", [])
    if not isinstance(items, list):
        raise ValueError(f"{path}: hosts: expected a list")
    hosts = []
    for i, item in enumerate(items):
        # A damaged entry must stop the daemon with one line, not a traceback.
        try:
            hosts.append(_host_from_body(item))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{path}: hosts[{i}]: bad entry ({exc!r})") from None
    return hosts


def save_hosts(path: Path, hosts: list[Host]) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a file."""
    doc = {
        "version": _FILE_VERSION,
        "hosts": [_host_body(h) for h in sorted(hosts, key=lambda h: h.mac)],
    }
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def migrate_hosts_file(store: DocumentStore, path: Path) -> int:
    """Move the hosts of a schema-1 host file into ``store``; returns how many.

    Idempotent and crash-safe: the hosts are written in one batch (documents
    already there are left alone), and only then is the file renamed to
    ``<name>.migrated``, so an interrupted migration simply runs again.
    """
    if not path.exists():
        return 0
    try:
        hosts = load_hosts(path)
    except ValueError as exc:
        raise StoreError(f"{exc}; fix or remove the file to start") from None
    present = {doc.name for doc in store.list("host")}
    new = [h for h in hosts if h.mac not in present]
    if new:
        store.batch(puts=[("host", h.mac, _host_body(h)) for h in new])
    try:
        os.replace(path, path.with_name(path.name + ".migrated"))
    except OSError as exc:
        raise StoreError(f"{path}: migrated into the store but cannot be renamed: {exc}") from None
    log.info("%s: %d learned hosts moved into the store", path, len(new))
    return len(new)
