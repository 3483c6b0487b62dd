"""Fixtures of the care-record tests: the people on the shared test server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import RunningServer
from tests.signaling.consultation_peers import Cast


@pytest.fixture
async def cast(server: RunningServer) -> AsyncIterator[Cast]:
    people = Cast(server)
    yield people
    await people.close()
