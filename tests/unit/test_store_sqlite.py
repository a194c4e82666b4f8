"""SQLite store hardening: damage is refused with one line, schema 1 migrates, the
state directory is locked (issue 13 items 3, 4 and 11)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from controller.fabric.model import Host, PortRef
from controller.store.documents import StoreDamaged, StoreError, StoreLocked
from controller.store.hosts import HostView, save_hosts
from controller.store.policies import PolicyView
from controller.store.sqlite import SCHEMA_VERSION, SqliteStore
from controller.store.statedir import HOSTS_FILE, LOCK_FILE, STORE_FILE, open_state_dir

REPO = Path(__file__).resolve().parents[2]


def _filled(path: Path, n: int = 3) -> int:
    with SqliteStore(path) as store:
        for i in range(n):
            store.put("job", f"j{i}", {"n": i})
        return store.revision()


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


# --------------------------------------------------------------------------- item 4: damage


def test_a_zero_byte_store_that_had_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    revision = _filled(path)
    path.write_bytes(b"")
    with pytest.raises(StoreDamaged) as info:
        SqliteStore(path)
    text = _one_line(info.value)
    assert text.startswith(f"{path}: the store file is empty (0 bytes)")
    assert f"revision {revision} was committed" in text
    assert f"delete {path.name}.committed" in text


def test_a_deleted_store_that_had_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    _filled(path)
    path.unlink()
    Path(f"{path}-wal").unlink(missing_ok=True)
    with pytest.raises(StoreDamaged, match="the store file is missing"):
        SqliteStore(path)
    assert not path.exists()  # refusing must not create an empty store either


def test_recovery_hint_works_deleting_the_marker_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    _filled(path)
    path.write_bytes(b"")
    Path(f"{path}.committed").unlink()
    with SqliteStore(path) as store:
        assert store.revision() == 0


def _killed_writer(path: Path, n: int) -> None:
    """Write ``n`` documents in a child process that then dies by SIGKILL, so the
    last commits live only in the write-ahead log (no checkpoint, no close)."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from controller.store.sqlite import SqliteStore
        store = SqliteStore({str(path)!r})
        for i in range({n}):
            store.put("job", f"j{{i}}", {{"n": i}})
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()


@pytest.mark.parametrize("damage", ["deleted", "emptied"])
def test_a_lost_write_ahead_log_after_kill_9_is_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / STORE_FILE
    _killed_writer(path, 5)
    wal = Path(f"{path}-wal")
    assert wal.stat().st_size > 0, "the commits should still be in the WAL"
    if damage == "deleted":
        wal.unlink()
    else:
        wal.write_bytes(b"")
    with pytest.raises(StoreDamaged) as info:
        SqliteStore(path)
    text = _one_line(info.value)
    assert "but revision 5 was committed" in text
    assert f"write-ahead log ({path.name}-wal) was lost" in text


def test_without_the_marker_a_lost_log_would_go_unnoticed(tmp_path: Path) -> None:
    """The failure the marker exists for: SQLite alone opens the older file."""
    path = tmp_path / STORE_FILE
    _killed_writer(path, 5)
    Path(f"{path}-wal").unlink()
    Path(f"{path}.committed").unlink()
    with SqliteStore(path) as store:
        assert store.revision() < 5


def test_an_intact_store_after_kill_9_opens_with_every_commit(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    _killed_writer(path, 5)
    with SqliteStore(path) as store:
        assert store.revision() == 5
        assert len(store.list("job")) == 5


def test_a_damaged_marker_is_refused(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    _filled(path)
    Path(f"{path}.committed").write_bytes(b"fabric-store-revision 00000000000000000009 deadbeef\n")
    with pytest.raises(StoreDamaged, match="the revision marker is damaged"):
        SqliteStore(path)


# --------------------------------------------------------------------------- item 11: one line


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("UPDATE meta SET value = 'x' WHERE key = 'revision'", "revision is 'x'"),
        ("DELETE FROM meta WHERE key = 'revision'", "revision is missing"),
        ("UPDATE meta SET value = 1 WHERE key = 'revision'", "but the store revision is 1"),
        ("UPDATE meta SET value = -4 WHERE key = 'revision'", "revision -4"),
        ("UPDATE meta SET value = 'two' WHERE key = 'schema_version'", "schema_version is"),
        ("UPDATE documents SET kind = 'song' WHERE name = 'j0'", "of an unknown kind"),
    ],
    ids=["text-revision", "no-revision", "revision-behind", "negative", "text-schema", "kind"],
)
def test_a_tampered_meta_table_is_refused_at_open(tmp_path: Path, sql: str, expected: str) -> None:
    path = tmp_path / STORE_FILE
    _filled(path)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql)
    conn.close()
    Path(f"{path}.committed").unlink()  # only the tampering is under test here
    with pytest.raises(StoreDamaged) as info:
        SqliteStore(path)
    text = _one_line(info.value)
    assert text.startswith(f"{path}: ")
    assert expected in text


@pytest.mark.parametrize(
    "content",
    [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000],
    ids=["text", "bad-header"],
)
def test_a_corrupt_file_is_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / STORE_FILE
    path.write_bytes(content)
    with pytest.raises(StoreError) as info:
        SqliteStore(path)
    assert _one_line(info.value).startswith(f"{path}: ")


# --------------------------------------------------------------------------- schema 1


_V1_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE policies ("
    " name TEXT PRIMARY KEY, version INTEGER NOT NULL UNIQUE, document TEXT NOT NULL)",
)


def _v1_state_dir(directory: Path) -> None:
    """A state directory as the schema-1 controller left it: policies.db and hosts.json."""
    directory.mkdir()
    conn = sqlite3.connect(directory / STORE_FILE)
    conn.execute("PRAGMA journal_mode=WAL")
    with conn:
        for statement in _V1_SCHEMA:
            conn.execute(statement)
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [("schema_version", 1), ("revision", 7)])
        docs = [
            ("default", 1, {"name": "default", "version": 1, "priority": 0, "strategy": "ecmp"}),
            (
                "ai",
                6,
                {
                    "name": "ai",
                    "version": 6,
                    "priority": 100,
                    "strategy": "widest",
                    "match": [{"ip_proto": "udp", "dst_ports": [4791]}],
                },
            ),
        ]
        conn.executemany(
            "INSERT INTO policies VALUES (?, ?, ?)",
            [(name, version, json.dumps(doc)) for name, version, doc in docs],
        )
    conn.close()
    save_hosts(
        directory / HOSTS_FILE,
        [Host(mac="02:00:00:00:00:01", ipv4="10.0.1.1", attach=PortRef(3, 1), last_seen=5.0)],
    )


def test_a_schema_1_state_dir_is_migrated(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    _v1_state_dir(directory)
    state = open_state_dir(directory)
    try:
        policies = PolicyView(state.store)
        assert [(p.name, p.version, p.priority) for p in policies.list()] == [
            ("ai", 6, 100),
            ("default", 1, 0),
        ]
        hosts = HostView(state.store).list()
        assert [(h.mac, h.ipv4, h.attach) for h in hosts] == [
            ("02:00:00:00:00:01", "10.0.1.1", PortRef(3, 1))
        ]
        # The host move was a write after revision 7: versions keep growing.
        assert state.store.revision() == 8
        assert policies.put(policies.get("ai")).version == 9
    finally:
        state.close()
    assert not (directory / HOSTS_FILE).exists()
    assert (directory / f"{HOSTS_FILE}.migrated").exists()
    conn = sqlite3.connect(directory / STORE_FILE)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == {"meta", "documents"}
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        assert meta == {"schema_version": SCHEMA_VERSION, "revision": 9}
    finally:
        conn.close()
    state = open_state_dir(directory)  # a second open changes nothing
    try:
        assert state.store.revision() == 9
        assert len(HostView(state.store).list()) == 1
    finally:
        state.close()


def test_an_interrupted_host_migration_runs_again_without_duplicates(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    _v1_state_dir(directory)
    open_state_dir(directory).close()
    (directory / f"{HOSTS_FILE}.migrated").rename(directory / HOSTS_FILE)  # crash before rename
    state = open_state_dir(directory)
    try:
        assert state.store.revision() == 8  # nothing new to write
        assert len(HostView(state.store).list()) == 1
    finally:
        state.close()


def test_a_damaged_host_file_is_one_line(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    directory.mkdir()
    (directory / HOSTS_FILE).write_text('{"version": 1, "hosts": [{"mac": 1}]}')
    with pytest.raises(StoreError) as info:
        open_state_dir(directory)
    assert "hosts[0]: bad entry" in _one_line(info.value)
    # The lock is released on failure: a corrected directory opens at once.
    (directory / HOSTS_FILE).unlink()
    open_state_dir(directory).close()


# --------------------------------------------------------------------------- item 3: lock


def test_a_second_open_of_a_state_dir_is_refused_naming_the_holder(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    first = open_state_dir(directory)
    try:
        with pytest.raises(StoreLocked) as info:
            open_state_dir(directory)
        text = _one_line(info.value)
        assert text == (
            f"{directory}: the state directory is in use by fabricd (pid {os.getpid()}); "
            "stop it or give this one another --state-dir"
        )
    finally:
        first.close()
    open_state_dir(directory).close()  # released on close


def test_the_lock_holds_against_another_process_and_dies_with_it(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    script = textwrap.dedent(
        f"""
        import sys
        from controller.store.statedir import open_state_dir
        state = open_state_dir({str(directory)!r})
        print("locked", flush=True)
        sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"locked"
        with pytest.raises(StoreLocked, match=f"in use by fabricd \\(pid {proc.pid}\\)"):
            open_state_dir(directory)
        proc.kill()  # SIGKILL: no cleanup, the kernel drops the lock
        proc.wait(timeout=10)
        open_state_dir(directory).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert (directory / LOCK_FILE).exists()
