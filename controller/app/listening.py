"""Whether this process listens on a TCP port (Linux ``/proc``).

fabricd probes its addresses before it starts anything, but the OpenFlow
framework binds its own server later, in a green thread that only *logs* a
failed bind: a port taken in between would leave fabricd "ready" with no
OpenFlow listener. Readiness therefore waits until one of this process's own
sockets listens on the OpenFlow port.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["listening_here"]

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column


def _listening_inodes(port: int, proc: Path) -> set[str] | None:
    """Inodes of the sockets in LISTEN on ``port`` (any address), or None when
    neither table can be read."""
    found: set[str] = set()
    read_any = False
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        read_any = True
        for line in lines:
            cols = line.split()
            if len(cols) < 10 or cols[3] != _LISTEN:
                continue
            if int(cols[1].rsplit(":", 1)[1], 16) == port:
                found.add(cols[9])
    return found if read_any else None


def listening_here(port: int, *, proc: Path = Path("/proc")) -> bool | None:
    """True if a socket of this process listens on TCP ``port``, False if none does,
    None when ``/proc`` cannot tell (not Linux, or not readable)."""
    inodes = _listening_inodes(port, proc)
    if inodes is None:
        return None
    if not inodes:
        return False
    fds = proc / "self" / "fd"
    try:
        names = os.listdir(fds)
    except OSError:
        return None
    for name in names:
        try:
            target = os.readlink(fds / name)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False
