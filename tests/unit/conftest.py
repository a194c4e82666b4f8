"""Fixtures shared by the API tests: the real controller on a fake fabric, served over gRPC.

``api`` is an :class:`apilab.ApiLab` (engine, publisher and facade of the
daemon); ``server`` serves it on a free loopback port; ``client`` talks to it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apilab import ApiLab, running_server

from controller.api.client import FabricClient
from controller.api.server import ApiServer


@pytest.fixture
def api() -> ApiLab:
    return ApiLab()


@pytest.fixture
def server(api: ApiLab) -> Iterator[ApiServer]:
    with running_server(api.facade) as srv:
        yield srv


@pytest.fixture
def client(server: ApiServer) -> Iterator[FabricClient]:
    with FabricClient(server.address, timeout=30.0) as c:
        yield c
