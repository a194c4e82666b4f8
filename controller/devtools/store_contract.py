"""The DocumentStore contract, as tests every store must pass.

Subclass :class:`DocumentStoreContract` in a test module and provide a
``docstore`` fixture yielding a fresh, empty store: the memory and SQLite
stores run it in ``tests/unit``, the etcd store against a real etcd in
``tests/etcd``. Revisions are compared relative to the store's own (an etcd
revision also counts writes outside the store's keys).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from controller.errors import AlreadyExists, InvalidArgument, NotFound, VersionConflict
from controller.store.documents import Change, DocumentStore, StoreClosed


def _body(n: int) -> dict[str, Any]:
    return {"n": n, "nested": {"list": [1, 2, n]}}


class DocumentStoreContract:
    def test_fresh_store_has_no_documents(self, docstore: DocumentStore) -> None:
        for kind in ("policy", "job", "drain", "host"):
            assert docstore.list(kind) == []
        with pytest.raises(NotFound, match="job 'j1' not found"):
            docstore.get("job", "j1")

    def test_put_versions_are_store_revisions_shared_by_all_kinds(
        self, docstore: DocumentStore
    ) -> None:
        a = docstore.put("job", "j1", _body(1))
        b = docstore.put("host", "02:00:00:00:00:01", {"mac": "x"})
        c = docstore.put("job", "j1", _body(2))
        assert a.version < b.version < c.version
        assert docstore.revision() >= c.version
        got = docstore.get("job", "j1")
        assert (got.version, got.body) == (c.version, _body(2))
        assert [d.name for d in docstore.list("job")] == ["j1"]
        assert [d.name for d in docstore.list("host")] == ["02:00:00:00:00:01"]

    def test_returned_bodies_are_copies(self, docstore: DocumentStore) -> None:
        doc = docstore.put("job", "j1", _body(1))
        doc.body["n"] = 99
        docstore.get("job", "j1").body["nested"]["list"].append(7)
        assert docstore.get("job", "j1").body == _body(1)

    def test_compare_and_set(self, docstore: DocumentStore) -> None:
        first = docstore.put("job", "j1", _body(1), expected_version=0)
        with pytest.raises(AlreadyExists, match="job 'j1' already exists"):
            docstore.put("job", "j1", _body(2), expected_version=0)
        with pytest.raises(VersionConflict, match=f"job 'j1' is at version {first.version}"):
            docstore.put("job", "j1", _body(2), expected_version=first.version + 1000)
        with pytest.raises(NotFound):
            docstore.put("job", "j2", _body(2), expected_version=5)
        second = docstore.put("job", "j1", _body(2), expected_version=first.version)
        assert second.version > first.version
        with pytest.raises(InvalidArgument, match="expected_version"):
            docstore.put("job", "j1", _body(3), expected_version=-1)
        assert docstore.get("job", "j1").body == _body(2)

    def test_delete(self, docstore: DocumentStore) -> None:
        doc = docstore.put("drain", "l1", _body(1))
        with pytest.raises(VersionConflict):
            docstore.delete("drain", "l1", expected_version=doc.version + 1000)
        assert docstore.delete("drain", "l1", expected_version=doc.version) == doc.version
        with pytest.raises(NotFound):
            docstore.delete("drain", "l1")
        with pytest.raises(NotFound):
            docstore.get("drain", "l1")

    def test_versions_never_repeat_after_delete_and_recreate(self, docstore: DocumentStore) -> None:
        first = docstore.put("job", "j1", _body(1))
        docstore.delete("job", "j1")
        again = docstore.put("job", "j1", _body(1))
        assert again.version > first.version + 1

    def test_unknown_kind_and_bad_names_are_refused(self, docstore: DocumentStore) -> None:
        with pytest.raises(InvalidArgument, match="kind"):
            docstore.put("song", "x", {})
        with pytest.raises(InvalidArgument, match="name"):
            docstore.put("job", "", {})
        with pytest.raises(InvalidArgument, match="control characters"):
            docstore.put("job", "a\nb", {})
        with pytest.raises(InvalidArgument, match="body"):
            docstore.put("job", "x", {"f": float("nan")})
        assert docstore.list("job") == []

    def test_names_with_separators_round_trip(self, docstore: DocumentStore) -> None:
        name = "0000000000000001/3->0000000000000002/1 %2F é"
        docstore.put("drain", name, {"ok": True})
        assert [d.name for d in docstore.list("drain")] == [name]
        assert docstore.get("drain", name).body == {"ok": True}
        assert docstore.list("job") == []

    def test_batch_writes_together(self, docstore: DocumentStore) -> None:
        docstore.put("host", "gone", {"n": 0})
        rev = docstore.batch(
            puts=[("host", "a", {"n": 1}), ("host", "b", {"n": 2})],
            deletes=[("host", "gone"), ("host", "never")],
        )
        docs = docstore.list("host")
        assert [(d.name, d.version) for d in docs] == [("a", rev), ("b", rev)]
        assert docstore.batch(deletes=[("host", "never")]) == rev

    def test_watch_reports_every_change_in_order(self, docstore: DocumentStore) -> None:
        seen: list[Change] = []
        done = threading.Event()

        def record(change: Change) -> None:
            seen.append(change)
            if change.kind == "host":
                done.set()

        unsubscribe = docstore.watch(record)
        a = docstore.put("job", "j1", _body(1))
        docstore.delete("job", "j1")
        b = docstore.put("host", "h", {"n": 1})
        assert done.wait(10)
        unsubscribe()
        docstore.put("job", "after", _body(1))
        assert [(c.kind, c.name, c.document is None) for c in seen] == [
            ("job", "j1", False),
            ("job", "j1", True),
            ("host", "h", False),
        ]
        revisions = [c.revision for c in seen]
        assert revisions == sorted(revisions) and len(set(revisions)) == 3
        assert seen[0].document is not None and seen[0].document.version == a.version
        assert seen[2].revision == b.version

    def test_watch_from_a_revision_misses_nothing(self, docstore: DocumentStore) -> None:
        docstore.put("job", "before", _body(0))
        mark = docstore.revision()
        docstore.put("job", "j1", _body(1))
        docstore.put("job", "j2", _body(2))
        seen: list[str] = []
        done = threading.Event()

        def record(change: Change) -> None:
            seen.append(change.name)
            if change.name == "j3":
                done.set()

        unsubscribe = docstore.watch(record, after_revision=mark)
        docstore.put("job", "j3", _body(3))
        assert done.wait(10)
        unsubscribe()
        assert seen == ["j1", "j2", "j3"]

    def test_a_failing_watcher_does_not_fail_the_write(self, docstore: DocumentStore) -> None:
        seen: list[int] = []
        got = threading.Event()

        def broken(change: Change) -> None:
            raise RuntimeError("watcher bug")

        def record(change: Change) -> None:
            seen.append(change.revision)
            got.set()

        docstore.watch(broken)
        docstore.watch(record)
        doc = docstore.put("job", "j1", _body(1))
        assert got.wait(10)
        assert seen == [doc.version]

    def test_seed_only_a_store_never_written(self, docstore: DocumentStore) -> None:
        assert docstore.seed_if_empty("policy", [("a", {"n": 1}), ("b", {"n": 2})]) is True
        assert [d.name for d in docstore.list("policy")] == ["a", "b"]
        assert docstore.seed_if_empty("policy", [("c", {"n": 3})]) is False
        docstore.delete("policy", "a")
        docstore.delete("policy", "b")
        assert docstore.seed_if_empty("policy", [("c", {"n": 3})]) is False
        assert docstore.list("policy") == []

    def test_seed_refused_after_any_write(self, docstore: DocumentStore) -> None:
        docstore.put("host", "h", {"n": 1})
        assert docstore.seed_if_empty("policy", [("a", {"n": 1})]) is False
        assert docstore.list("policy") == []

    def test_concurrent_compare_and_set_lets_exactly_one_win(self, docstore: DocumentStore) -> None:
        base = docstore.put("job", "j1", _body(0))
        wins: list[int] = []
        conflicts: list[int] = []
        barrier = threading.Barrier(6)

        def writer(i: int) -> None:
            barrier.wait()
            try:
                docstore.put("job", "j1", _body(i), expected_version=base.version)
                wins.append(i)
            except VersionConflict:
                conflicts.append(i)

        workers = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=30)
        assert len(wins) == 1 and len(conflicts) == 5
        assert docstore.get("job", "j1").body == _body(wins[0])

    def test_closed_store_refuses_work(self, docstore: DocumentStore) -> None:
        docstore.close()
        with pytest.raises(StoreClosed):
            docstore.list("job")
        with pytest.raises(StoreClosed):
            docstore.put("job", "j1", _body(1))
