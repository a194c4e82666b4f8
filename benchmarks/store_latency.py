"""Store write latency: what the committed-revision marker costs per apply.

Compares, on this machine's disk, a policy-sized put on the SQLite store as
shipped (WAL + fsync'd revision marker) with the same store without the
marker, and with SQLite's rollback journal (where committed data never
lives only in a side file, so a lost journal cannot lose commits, but a
truncated or deleted file still goes unnoticed without a marker).
Run: ``python -m benchmarks.store_latency``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from controller.store.marker import RevisionMarker
from controller.store.sqlite import SqliteStore

BODY = {"name": "p", "priority": 100, "strategy": "least-utilized", "match": [{"ip_proto": 17}]}


def _measure(store: SqliteStore, n: int) -> list[float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        store.put("policy", f"p{i % 20}", BODY)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _row(label: str, times: list[float]) -> str:
    q = statistics.quantiles(times, n=100)
    return f"{label:<34} median {statistics.median(times):6.2f} ms   p99 {q[98]:6.2f} ms"


def main(n: int = 300) -> None:
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        rows = []
        store = SqliteStore(Path(tmp) / "a.db")
        rows.append(_row("WAL + revision marker (shipped)", _measure(store, n)))
        store.close()

        store = SqliteStore(Path(tmp) / "b.db")
        store._marker.write = lambda revision: None  # type: ignore[method-assign]
        rows.append(_row("WAL, no marker", _measure(store, n)))
        store.close()

        store = SqliteStore(Path(tmp) / "c.db")
        store._conn.execute("PRAGMA journal_mode=DELETE")
        store._marker.write = lambda revision: None  # type: ignore[method-assign]
        rows.append(_row("rollback journal (DELETE), no marker", _measure(store, n)))
        store.close()

        marker = RevisionMarker(Path(tmp) / "m")
        times = []
        for i in range(n):
            start = time.perf_counter()
            marker.write(i)
            times.append((time.perf_counter() - start) * 1e3)
        marker.close()
        rows.append(_row("marker write alone", times))
    print(f"store put latency, {n} puts each")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
