"""Fixtures shared by the API tests: a fake facade and an in-process server over it.

Test modules may still define their own ``fake`` or ``server``; those win.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_fakes import FakeFacade, running_server

from controller.api.server import ApiServer


@pytest.fixture
def fake() -> FakeFacade:
    return FakeFacade()


@pytest.fixture
def server(fake: FakeFacade) -> Iterator[ApiServer]:
    with running_server(fake) as srv:
        yield srv
