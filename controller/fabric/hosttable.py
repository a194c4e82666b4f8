"""Hosts by MAC, with the indexes the hub reads per packet (by IPv4 address, by port)."""

from __future__ import annotations

from typing import Any

from controller.fabric.model import Host, PortRef

__all__ = ["HostTable", "unlist"]


def unlist(table: dict[Any, set[Any]], key: Any, item: Any) -> None:
    """Remove ``item`` from the set under ``key``, and the key once its set is empty."""
    items = table.get(key)
    if items is not None:
        items.discard(item)
        if not items:
            del table[key]


class HostTable(dict[str, Host]):
    """Hosts by MAC, indexed by IPv4 address and by attachment port.

    A dict so that callers keep reading (and adding to) ``topology.hosts`` as
    before; every way of changing it updates the indexes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.by_ip: dict[str, set[str]] = {}
        self.by_port: dict[PortRef, set[str]] = {}

    def _index(self, host: Host) -> None:
        if host.ipv4 is not None:
            self.by_ip.setdefault(host.ipv4, set()).add(host.mac)
        self.by_port.setdefault(host.attach, set()).add(host.mac)

    def _unindex(self, host: Host) -> None:
        if host.ipv4 is not None:
            unlist(self.by_ip, host.ipv4, host.mac)
        unlist(self.by_port, host.attach, host.mac)

    def __setitem__(self, mac: str, host: Host) -> None:
        old = super().get(mac)
        if old is not None and (old.mac, old.ipv4, old.attach) == (
            host.mac,
            host.ipv4,
            host.attach,
        ):
            super().__setitem__(mac, host)  # seen again where it was: indexes stand
            return
        if old is not None:
            self._unindex(old)
        super().__setitem__(mac, host)
        self._index(host)

    def __delitem__(self, mac: str) -> None:
        self._unindex(self[mac])
        super().__delitem__(mac)

    def setdefault(self, mac: str, host: Host) -> Host:
        if mac not in self:
            self[mac] = host
        return self[mac]

    def pop(self, mac: str, *default: Any) -> Any:
        if mac not in self:
            if default:
                return default[0]
            raise KeyError(mac)
        host = self[mac]
        del self[mac]
        return host

    def popitem(self) -> tuple[str, Host]:
        mac, host = next(reversed(self.items()))
        del self[mac]
        return mac, host

    def update(self, *args: Any, **kwargs: Host) -> None:
        for mac, host in dict(*args, **kwargs).items():
            self[mac] = host

    def clear(self) -> None:
        super().clear()
        self.by_ip.clear()
        self.by_port.clear()

    def __ior__(self, other: Any) -> HostTable:  # type: ignore[override,misc]
        self.update(other)
        return self
