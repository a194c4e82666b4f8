"""Policy views: the PolicyStore contract on memory and SQLite, then SQLite's own duties."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from controller.errors import AlreadyExists, InvalidArgument, NotFound, VersionConflict
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy
from controller.store.documents import StoreClosed, StoreError
from controller.store.policies import MemoryPolicyStore, PolicyStore, SqlitePolicyStore
from controller.store.sqlite import SCHEMA_VERSION

DEFAULT = Policy(name="default", priority=0)
AI = Policy(
    name="ai",
    priority=100,
    match=(FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),)),),
    strategy=Strategy.LEAST_UTILIZED,
)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PolicyStore]:
    s: PolicyStore = (
        MemoryPolicyStore() if request.param == "memory" else SqlitePolicyStore(tmp_path / "p.db")
    )
    yield s
    s.close()


def test_fresh_store_is_empty(store: PolicyStore) -> None:
    assert store.revision() == 0
    assert store.list() == []
    with pytest.raises(NotFound, match="policy 'ai' not found"):
        store.get("ai")


def test_upsert_assigns_the_new_revision_as_version(store: PolicyStore) -> None:
    first = store.put(replace(AI, version=77))  # the caller's version is ignored
    assert first == replace(AI, version=1)
    assert store.get("ai") == first
    second = store.put(replace(AI, priority=90))
    assert (second.version, second.priority) == (2, 90)
    assert store.get("ai") == second
    assert store.revision() == 2


def test_create_only(store: PolicyStore) -> None:
    created = store.put(AI, expected_version=0)
    assert created.version == 1
    with pytest.raises(AlreadyExists, match="policy 'ai' already exists"):
        store.put(replace(AI, priority=5), expected_version=0)
    assert store.get("ai") == created
    assert store.revision() == 1  # a refused write changes nothing


def test_compare_and_set(store: PolicyStore) -> None:
    v1 = store.put(AI).version
    v2 = store.put(replace(AI, priority=99), expected_version=v1).version
    with pytest.raises(VersionConflict) as info:
        store.put(replace(AI, priority=98), expected_version=v1)
    assert (info.value.expected, info.value.actual) == (v1, v2)
    assert store.get("ai").priority == 99
    with pytest.raises(NotFound):
        store.put(replace(AI, name="absent"), expected_version=3)
    with pytest.raises(InvalidArgument) as bad:
        store.put(AI, expected_version=-1)
    assert bad.value.field == "expected_version"


def test_delete(store: PolicyStore) -> None:
    stored = store.put(AI)
    store.put(DEFAULT)
    with pytest.raises(VersionConflict):
        store.delete("ai", expected_version=stored.version + 1)
    assert store.delete("ai", expected_version=stored.version) == stored.version
    assert [p.name for p in store.list()] == ["default"]
    assert store.revision() == 3
    with pytest.raises(NotFound):
        store.delete("ai")
    assert store.delete("default") == 2


def test_versions_never_repeat_after_delete_and_recreate(store: PolicyStore) -> None:
    seen = [store.put(AI).version]
    store.delete("ai")
    seen.append(store.put(AI, expected_version=0).version)
    seen.append(store.put(DEFAULT).version)
    store.delete("ai")
    seen.append(store.put(AI).version)
    assert seen == [1, 3, 4, 6]
    assert len(set(seen)) == len(seen)


def test_list_is_sorted_by_name(store: PolicyStore) -> None:
    for name in ["zeta", "alpha", "mid"]:
        store.put(replace(AI, name=name))
    assert [p.name for p in store.list()] == ["alpha", "mid", "zeta"]
    assert [p.version for p in store.list()] == [2, 3, 1]


def test_invalid_policy_is_refused(store: PolicyStore) -> None:
    with pytest.raises(InvalidArgument) as info:
        store.put(replace(AI, priority=70000))
    assert info.value.field == "priority"
    assert store.revision() == 0


def test_watch_reports_every_change_in_order(store: PolicyStore) -> None:
    seen: list[tuple[str, int | None, int]] = []
    unsubscribe = store.watch(
        lambda name, p, rev: seen.append((name, p.version if p else None, rev))
    )
    store.put(AI)
    store.put(DEFAULT)
    with pytest.raises(AlreadyExists):
        store.put(AI, expected_version=0)
    store.delete("ai")
    unsubscribe()
    store.put(AI)
    assert seen == [("ai", 1, 1), ("default", 2, 2), ("ai", None, 3)]


def test_watch_callback_gets_the_stored_policy_and_may_read(store: PolicyStore) -> None:
    got: list[Policy | None] = []
    store.watch(lambda name, p, rev: got.append(store.get(name) if p else None))
    stored = store.put(AI)
    assert got == [stored]


def test_a_failing_watcher_does_not_fail_the_write(store: PolicyStore) -> None:
    def broken(name: str, p: Policy | None, rev: int) -> None:
        raise RuntimeError("watcher bug")

    seen: list[int] = []
    store.watch(broken)
    store.watch(lambda name, p, rev: seen.append(rev))
    assert store.put(AI).version == 1
    assert seen == [1]


def test_seed_if_empty_only_seeds_a_fresh_store(store: PolicyStore) -> None:
    seen: list[str] = []
    store.watch(lambda name, p, rev: seen.append(name))
    assert store.seed_if_empty([DEFAULT, AI]) is True
    # Seeds are written together: one revision, as one etcd transaction would be.
    assert [(p.name, p.version) for p in store.list()] == [("ai", 1), ("default", 1)]
    assert store.revision() == 1
    assert seen == ["default", "ai"]
    assert store.seed_if_empty([replace(AI, priority=1)]) is False
    assert store.get("ai").priority == 100
    # Even after everything was deleted, the store has history: no re-seeding.
    store.delete("ai")
    store.delete("default")
    assert store.seed_if_empty([DEFAULT]) is False
    assert store.list() == []


def test_seed_is_all_or_nothing(store: PolicyStore) -> None:
    with pytest.raises(InvalidArgument):
        store.seed_if_empty([DEFAULT, replace(AI, name="Bad Name")])
    with pytest.raises(InvalidArgument, match="given twice"):
        store.seed_if_empty([DEFAULT, DEFAULT])
    assert store.revision() == 0


def test_closed_store_refuses_work(store: PolicyStore) -> None:
    store.close()
    with pytest.raises(StoreClosed):
        store.put(AI)
    with pytest.raises(StoreClosed):
        store.list()
    store.close()  # idempotent


def test_concurrent_writers(store: PolicyStore) -> None:
    """Threads putting distinct and shared policies: every write gets its own revision."""
    threads, per_thread = 4, 15
    versions: list[int] = []
    lock = threading.Lock()
    watched: list[int] = []
    store.watch(lambda name, p, rev: watched.append(rev))
    start = threading.Barrier(threads)

    def writer(i: int) -> None:
        start.wait()
        for j in range(per_thread):
            own = store.put(replace(AI, name=f"t{i}", priority=j))
            shared = store.put(replace(DEFAULT, description=f"{i}/{j}"))
            with lock:
                versions.extend([own.version, shared.version])

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    total = threads * per_thread * 2
    assert sorted(versions) == list(range(1, total + 1))
    assert store.revision() == total
    assert watched == list(range(1, total + 1)), "watchers see revisions in order"
    assert {p.name: p.priority for p in store.list() if p.name != "default"} == {
        f"t{i}": per_thread - 1 for i in range(threads)
    }


def test_concurrent_compare_and_set_lets_exactly_one_win(store: PolicyStore) -> None:
    base = store.put(AI).version
    wins: list[int] = []
    conflicts: list[int] = []
    start = threading.Barrier(6)

    def contender(i: int) -> None:
        start.wait()
        try:
            store.put(replace(AI, priority=i), expected_version=base)
            wins.append(i)
        except VersionConflict:
            conflicts.append(i)

    workers = [threading.Thread(target=contender, args=(i,)) for i in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    assert len(wins) == 1
    assert len(conflicts) == 5
    assert store.get("ai").priority == wins[0]


# --------------------------------------------------------------------------- SQLite only


def test_sqlite_is_durable_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "policies.db"  # the directory is created
    with SqlitePolicyStore(path) as s:
        s.seed_if_empty([DEFAULT])
        full = replace(
            AI,
            strategy=Strategy.PINNED,
            pinned_path=("leaf1", "spine2", "leaf2"),
            fallback=Strategy.WIDEST,
            description="pinned",
        )
        stored = s.put(full)
        s.put(replace(AI, name="gone"))
        s.delete("gone")
        before = s.list()
    with SqlitePolicyStore(path) as s:
        assert s.list() == before
        assert s.get("ai") == stored
        assert s.revision() == 4
        assert s.seed_if_empty([replace(DEFAULT, priority=9)]) is False
        assert s.put(replace(AI, name="gone")).version == 5


def test_sqlite_pragmas_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    SqlitePolicyStore(path).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        assert meta == {"schema_version": SCHEMA_VERSION, "revision": 0}
    finally:
        conn.close()


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    SqlitePolicyStore(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,)
        )
    conn.close()
    with pytest.raises(StoreError) as info:
        SqlitePolicyStore(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert f"schema version {SCHEMA_VERSION + 1} is newer" in message


@pytest.mark.parametrize(
    "content",
    [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000],
    ids=["text", "bad-header"],
)
def test_sqlite_corrupt_file_names_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "p.db"
    path.write_bytes(content)
    with pytest.raises(StoreError) as info:
        SqlitePolicyStore(path)
    assert str(info.value).startswith(f"{path}: ")


def test_sqlite_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE songs (title TEXT)")
    conn.close()
    with pytest.raises(StoreError, match=r"not a fabric store \(it has tables songs\)"):
        SqlitePolicyStore(path)


def test_sqlite_unreadable_document_names_file_and_policy(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with SqlitePolicyStore(path) as s:
        s.put(AI)
    conn = sqlite3.connect(path)
    with conn:  # valid JSON, but not a policy
        conn.execute("UPDATE documents SET body = '{\"name\": 1}' WHERE name = 'ai'")
    conn.close()
    with SqlitePolicyStore(path) as s, pytest.raises(StoreError) as info:
        s.get("ai")
    assert str(info.value).startswith(f"{path}: stored policy 'ai' is unreadable")


def test_sqlite_document_that_is_not_json_is_refused_at_open(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with SqlitePolicyStore(path) as s:
        s.put(AI)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE documents SET body = '{\"name\": 1' WHERE name = 'ai'")
    conn.close()
    with pytest.raises(StoreError) as info:
        SqlitePolicyStore(path)
    assert str(info.value).startswith(f"{path}: stored policy 'ai' is unreadable")


def test_sqlite_path_that_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        SqlitePolicyStore(tmp_path)  # a directory
    assert str(tmp_path) in str(info.value)


def test_sqlite_sees_writes_of_another_connection(tmp_path: Path) -> None:
    """Two stores on one file (two controller processes) share one revision sequence."""
    path = tmp_path / "p.db"
    with SqlitePolicyStore(path) as a, SqlitePolicyStore(path) as b:
        assert a.put(AI).version == 1
        assert b.put(DEFAULT).version == 2
        assert a.get("default").version == 2
        with pytest.raises(VersionConflict):
            b.put(AI, expected_version=5)


def test_sqlite_damaged_pages_are_detected_at_open(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with SqlitePolicyStore(path) as s:
        for i in range(40):
            s.put(replace(AI, name=f"p{i}", description="x" * 200))
    raw = bytearray(path.read_bytes())
    assert len(raw) > 3 * 4096
    raw[4096 : 2 * 4096] = b"\x5a" * 4096  # overwrite the second page
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError) as info:
        SqlitePolicyStore(path)
    assert str(info.value).startswith(f"{path}: ")
