"""pytest fixtures for real etcd: import them into a conftest to use them.

``from controller.devtools.etcd_pytest import etcd_server, etcd_cluster  # noqa: F401``

``etcd_server``: one member for the whole session (tests stay apart by using
a cluster name of their own, see ``cluster_name``); ``etcd_cluster``: three
fresh members per test, for tests that kill or pause members. Both are
stopped by pid in a finalizer, also when the test fails. Missing etcd fails
the test (``make setup`` installs it), never skips it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from controller.devtools.etcd import EtcdCluster, EtcdMember, start_etcd, start_etcd_cluster

__all__ = ["etcd_server", "etcd_cluster", "cluster_name"]

_names = itertools.count(1)


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdMember]:
    member = start_etcd(tmp_path_factory.mktemp("etcd"))
    try:
        yield member
    finally:
        member.stop()


@pytest.fixture
def etcd_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    cluster = start_etcd_cluster(tmp_path_factory.mktemp("etcd3"), size=3)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_name() -> str:
    """A key prefix no other test of this session uses."""
    return f"t{next(_names)}"
