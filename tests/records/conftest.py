"""Fixtures of the care-record tests: the people on the shared test server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from records.facade import Records
from records.models import Patient, Report
from records.reports import Handover
from records.tables import Table
from rooms.models import AuditEvent
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


def handover(records: Records) -> Handover:
    """The share and audit entry a final version is written with, for tests that finalise
    directly (the care record builds its own from the clinician who acts)."""

    def audit(report: Report) -> AuditEvent:
        details = {"version": report.version}
        return AuditEvent(
            report.consultation_id,
            0.0,
            report.clinician_id,
            "specialist",
            "report_finalised",
            details,
            report.patient_id,
        )

    return Handover(records.shares, audit)
