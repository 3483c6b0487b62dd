"""Fixtures of the care-record tests: the people on the shared test server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from records.models import Patient
from records.tables import Table
from tests.conftest import RunningServer
from tests.signaling.consultation_peers import Cast


@pytest.fixture
async def cast(server: RunningServer) -> AsyncIterator[Cast]:
    people = Cast(server)
    yield people
    await people.close()


def nothing_else(patient: Patient) -> list[Table]:
    """No rows to write with a patient registered directly (the care record writes consent and
    audit with it)."""
    return []
