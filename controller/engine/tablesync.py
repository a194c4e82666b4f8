"""Reading a switch's ports and tables: after it connects, and again to reconcile.

A connected switch is read in two steps: its port descriptions first, then
its flow, group and meter tables (the replies may come in several parts).
Only when every part is in does the engine hear of the switch, with a
complete :class:`~controller.flowprog.tables.SwitchTable`, so it reconciles
against what the switch really holds instead of wiping it. A read that
stalls is restarted; a switch that reports an error is re-read a little
later (a resync), never at once (errors come in bursts).

This module only keeps the state of reads in progress and says what to ask
for next; it sends nothing and decides nothing about the tables' contents.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from controller.engine.outputs import TablePart, TableRead
from controller.fabric.model import Dpid, Port
from controller.flowprog.entries import EntryKey, FlowEntry, GroupEntry, MeterEntry
from controller.flowprog.tables import SwitchTable

__all__ = ["TableSync", "SyncedSwitch", "OFPP_LOCAL"]

OFPP_LOCAL = 0xFFFFFFFE  # the bridge's own port: its name is the switch's name
_TABLES = (TablePart.FLOWS, TablePart.GROUPS, TablePart.METERS)


@dataclass(frozen=True)
class SyncedSwitch:
    """A finished read: what the switch reported."""

    dpid: Dpid
    name: str
    ports: tuple[Port, ...]
    table: SwitchTable


@dataclass
class _Read:
    started: float
    waiting: set[TablePart] = field(default_factory=lambda: {TablePart.PORTS})
    name: str = ""
    ports: list[Port] = field(default_factory=list)
    table: SwitchTable = field(default_factory=SwitchTable)


class TableSync:
    def __init__(self, *, timeout_s: float = 10.0, resync_delay_s: float = 1.0) -> None:
        self.timeout_s = timeout_s
        self.resync_delay_s = resync_delay_s
        self._reads: dict[Dpid, _Read] = {}
        self._resync_due: dict[Dpid, float] = {}

    def start(self, dpid: Dpid, *, now: float) -> list[TableRead]:
        """Begin (or restart) reading ``dpid``: ask for its ports."""
        self._reads[dpid] = _Read(started=now)
        return [TableRead(dpid, TablePart.PORTS)]

    def reading(self, dpid: Dpid, part: TablePart) -> bool:
        """Whether a reply of ``part`` from ``dpid`` belongs to a read in progress."""
        read = self._reads.get(dpid)
        return read is not None and part in read.waiting

    def ports(self, dpid: Dpid, ports: Iterable[Port], *, more: bool) -> list[TableRead]:
        """A part of the port descriptions; when complete, ask for the tables."""
        read = self._reads.get(dpid)
        if read is None or TablePart.PORTS not in read.waiting:
            return []
        for port in ports:
            if port.port_no == OFPP_LOCAL:
                read.name = port.name
            read.ports.append(port)
        if more:
            return []
        read.waiting = set(_TABLES)
        return [TableRead(dpid, part) for part in _TABLES]

    def flows(self, dpid: Dpid, entries: Iterable[FlowEntry], *, more: bool) -> SyncedSwitch | None:
        return self._fold(dpid, TablePart.FLOWS, ((e.key, e) for e in entries), more=more)

    def groups(
        self, dpid: Dpid, groups: Iterable[GroupEntry], *, more: bool
    ) -> SyncedSwitch | None:
        return self._fold(dpid, TablePart.GROUPS, ((g.group_id, g) for g in groups), more=more)

    def meters(
        self, dpid: Dpid, meters: Iterable[MeterEntry], *, more: bool
    ) -> SyncedSwitch | None:
        return self._fold(dpid, TablePart.METERS, ((m.meter_id, m) for m in meters), more=more)

    def _fold(
        self,
        dpid: Dpid,
        part: TablePart,
        items: Iterable[tuple[EntryKey | int, FlowEntry | GroupEntry | MeterEntry]],
        *,
        more: bool,
    ) -> SyncedSwitch | None:
        read = self._reads.get(dpid)
        if read is None or part not in read.waiting:
            return None
        store: dict[EntryKey | int, FlowEntry | GroupEntry | MeterEntry] = getattr(
            read.table, part.value
        )
        store.update(items)
        if more:
            return None
        return self.part_done(dpid, part)

    def part_done(self, dpid: Dpid, part: TablePart) -> SyncedSwitch | None:
        """``part`` is complete (or the switch cannot report it, e.g. no meters)."""
        read = self._reads.get(dpid)
        if read is None:
            return None
        read.waiting.discard(part)
        if read.waiting:
            return None
        del self._reads[dpid]
        return SyncedSwitch(dpid, read.name, tuple(read.ports), read.table)

    def schedule_resync(self, dpid: Dpid, *, now: float) -> None:
        """Re-read ``dpid`` soon (the first request wins; bursts collapse into one)."""
        self._resync_due.setdefault(dpid, now + self.resync_delay_s)

    def due(self, *, now: float, connected: Iterable[Dpid]) -> tuple[list[TableRead], list[str]]:
        """Reads to start now: resyncs that fell due and reads that stalled.

        Returns the requests and a line per stalled read (for the log).
        """
        up = set(connected)
        requests: list[TableRead] = []
        stalled: list[str] = []
        for dpid, when in sorted(self._resync_due.items()):
            if now < when:
                continue
            del self._resync_due[dpid]
            if dpid in up and dpid not in self._reads:
                requests += self.start(dpid, now=now)
        for dpid, read in sorted(self._reads.items()):
            if now - read.started > self.timeout_s:
                stalled.append(f"switch {dpid:016x} did not report its tables; retrying")
                requests += self.start(dpid, now=now)
        return requests, stalled

    def forget(self, dpid: Dpid) -> None:
        self._reads.pop(dpid, None)
        self._resync_due.pop(dpid, None)
