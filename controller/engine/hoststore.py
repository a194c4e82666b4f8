"""Remember learned hosts across controller restarts (a small JSON file).

Switches keep their flows while the controller is away (fail-secure), but a
restarted controller would not know the hosts those flows lead to, and hosts
whose traffic already flows never send it a packet to learn from. Restoring
them lets the first reconcile keep every host route in place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from controller.fabric.model import Host, PortRef

__all__ = ["load_hosts", "save_hosts"]

_VERSION = 1


def load_hosts(path: Path) -> list[Host]:
    """Hosts saved by :func:`save_hosts`; an absent file is an empty list."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable host table: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != _VERSION:
        raise ValueError(f"{path}: unknown host table format")
    hosts = []
    items = doc.get("hosts", [])
    if not isinstance(items, list):
        raise ValueError(f"{path}: hosts: expected a list")
    for i, item in enumerate(items):
        # A damaged entry must stop the daemon with one line, not a traceback.
        try:
            hosts.append(
                Host(
                    mac=str(item["mac"]),
                    ipv4=item.get("ipv4"),
                    attach=PortRef(int(item["dpid"]), int(item["port"])),
                    last_seen=0.0,
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{path}: hosts[{i}]: bad entry ({exc!r})") from None
    return hosts


def save_hosts(path: Path, hosts: list[Host]) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a file."""
    doc = {
        "version": _VERSION,
        "hosts": [
            {"mac": h.mac, "ipv4": h.ipv4, "dpid": h.attach.dpid, "port": h.attach.port}
            for h in sorted(hosts, key=lambda h: h.mac)
        ],
    }
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
