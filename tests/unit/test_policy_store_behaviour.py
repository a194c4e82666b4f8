"""The policy stores, book and overlap rules as the API and the daemon see them.

Both stores (memory and SQLite) must answer the same way: which errors a
caller gets (and what they say), which watchers hear about which change, and
what a store file that is not ours, or from a newer controller, does at start.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.errors import InvalidArgument, NotFound, VersionConflict
from controller.fabric.model import FiveTuple
from controller.policy.book import PolicyBook
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy
from controller.policy.overlap import check_conflicts
from controller.store.documents import StoreError
from controller.store.policies import MemoryPolicyStore, PolicyStore, SqlitePolicyStore

UDP = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),))
AI = Policy(name="ai", priority=100, match=(UDP,), strategy=Strategy.LEAST_UTILIZED)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PolicyStore]:
    if request.param == "memory":
        mem = MemoryPolicyStore()
        yield mem
        mem.close()
    else:
        with SqlitePolicyStore(tmp_path / "deep" / "er" / "policies.db") as db:
            yield db


def test_missing_and_stale_versions_name_the_policy(store: PolicyStore) -> None:
    with pytest.raises(NotFound) as missing:
        store.delete("ghost")
    assert str(missing.value) == "policy 'ghost' not found"
    with pytest.raises(NotFound) as missing:
        store.put(AI, expected_version=3)
    assert str(missing.value) == "policy 'ai' not found"
    stored = store.put(AI)
    with pytest.raises(VersionConflict) as stale:
        store.delete("ai", expected_version=stored.version + 5)
    assert str(stale.value) == str(VersionConflict("ai", stored.version + 5, stored.version))
    assert "'ai'" in str(stale.value) and str(stored.version + 5) in str(stale.value)
    with pytest.raises(VersionConflict) as stale:
        store.put(AI, expected_version=stored.version + 1)
    assert "'ai'" in str(stale.value)
    assert store.delete("ai", expected_version=stored.version) == stored.version


def test_an_expected_version_must_be_a_plain_integer(store: PolicyStore) -> None:
    for bad in (True, -1, "1"):
        with pytest.raises(InvalidArgument) as err:
            store.put(AI, expected_version=bad)  # type: ignore[arg-type]
        assert (err.value.field, err.value.reason) == (
            "expected_version",
            f"must be an integer >= 0, got {bad!r}",
        )


def test_a_corrupt_store_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "policies.db"
    with SqlitePolicyStore(path) as db:
        for i in range(200):
            db.put(
                Policy(name=f"p{i}", priority=i, match=(FlowMatch(ip_proto=17, dscp=(i % 64,)),))
            )
    data = bytearray(path.read_bytes())
    data[8192:12288] = b"\xff" * 4096  # trash a page of the table
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as err:
        SqlitePolicyStore(path)
    assert str(err.value).startswith(f"{path}: ")
    assert "corrupt" in str(err.value) or "malformed" in str(err.value)


def test_a_book_refuses_two_policies_of_one_name_and_reads_well() -> None:
    with pytest.raises(InvalidArgument) as err:
        PolicyBook([AI, AI])
    assert (err.value.field, err.value.reason) == ("name", "policy 'ai' given twice")
    bulk = Policy(name="bulk", priority=10)
    assert repr(PolicyBook([bulk, AI])) == "PolicyBook([ai@100, bulk@10])"


def test_a_dscp_policy_does_not_govern_a_lookup_without_dscp() -> None:
    marked = Policy(name="marked", priority=50, match=(FlowMatch(dscp=(1,)),))
    book = PolicyBook([marked])
    ft = FiveTuple("10.0.0.1", "10.0.0.2", 17, 1, 2)
    assert book.governing(ft) is None
    assert book.governing(ft, dscp=1) == marked


def test_port_ranges_read_as_written() -> None:
    assert (str(PortRange(80, 80)), str(PortRange(1, 2))) == ("80", "1-2")


# -------------------------------------------------------------------- overlap
def at(name: str, priority: int, **match: object) -> Policy:
    return Policy(name=name, priority=priority, match=(FlowMatch(**match),))  # type: ignore[arg-type]


def test_policies_at_one_priority_overlap_only_where_every_field_meets() -> None:
    net = ipaddress.IPv4Network
    a = at("a", 5, ip_proto=17, src_ports=(PortRange(1, 10),), dst_hosts=(net("10.0.0.0/24"),))
    apart_ports = at("b", 5, ip_proto=17, src_ports=(PortRange(11, 20),))
    apart_hosts = at("e", 5, ip_proto=17, dst_hosts=(net("10.0.1.0/24"),))
    check_conflicts(apart_ports, [a])
    check_conflicts(apart_hosts, [a])
    meets = at("b", 5, ip_proto=17, src_ports=(PortRange(5, 6),))
    # The policy it replaces (same name) and other priorities do not count.
    with pytest.raises(InvalidArgument) as err:
        check_conflicts(meets, [at("a", 6, ip_proto=17), at("b", 5, ip_proto=17), a_c(a)])
    assert (err.value.field, err.value.reason) == (
        "priority",
        "priority 5 is also used by policy 'c', whose match overlaps this one; give one of "
        "them another priority so it is clear which governs the flows both match",
    )


def a_c(policy: Policy) -> Policy:
    """``policy`` renamed to c (sorted after the others)."""
    return Policy(name="c", priority=policy.priority, match=policy.match)
