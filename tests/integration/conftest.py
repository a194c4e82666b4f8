"""Fixtures for tests on a real emulated fabric: fabricd as a process, Open vSwitch, Mininet.

Everything a test starts is stopped by a finalizer, also when the test fails:
fabricd by its pid, the Mininet fabric with ``net.stop()`` (its own bridges,
links and host namespaces) after killing the host processes it spawned.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controller.devtools.etcd_pytest import cluster_name, etcd_cluster, etcd_server  # noqa: F401
from controller.devtools.process import Fabricd, start_fabricd
from mininet_topos.harness import LeafSpineFabric


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _needs_root_and_ovs() -> None:
    """Part of `make test`: fail loudly (never skip) when the machine is not ready."""
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (Mininet, Open vSwitch); run `sudo make test`")
    if shutil.which("ovs-vsctl") is None:
        pytest.fail("Open vSwitch is not installed; run `make setup`")
    rc = subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True).returncode
    if rc != 0:
        pytest.fail("Open vSwitch is not running; run `make setup` (it starts it)")


@pytest.fixture
def fabricd_factory(tmp_path: Path) -> Iterator[Callable[..., Fabricd]]:
    started: list[Fabricd] = []

    def factory(*extra: str, **kw: object) -> Fabricd:
        fd = start_fabricd(tmp_path, *extra, **kw)  # type: ignore[arg-type]
        started.append(fd)
        return fd

    yield factory
    for fd in started:
        fd.stop()


@pytest.fixture
def fabric_factory() -> Iterator[Callable[..., LeafSpineFabric]]:
    started: list[LeafSpineFabric] = []

    def factory(spines: int, leaves: int, hosts: int, **kw: object) -> LeafSpineFabric:
        fab = LeafSpineFabric(spines, leaves, hosts, **kw)
        started.append(fab)
        return fab.start()

    yield factory
    for fab in started:
        fab.stop()
