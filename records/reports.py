"""Reports in SQL: versions of a consultation's report, each body sealed to its row.

The newest version is the one being worked on: a draft is rewritten in place until it is
finalised; an amendment adds a new final version and keeps every earlier one readable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from records.audit_trail import row_of
from records.database import RecordsDatabase
from records.models import Report, Share
from records.sealing import Sealer
from records.shares import ReportShares
from records.tables import ReportRow
from records.visit_facts import FINAL, refresh
from rooms.models import AuditEvent

_TABLE = "reports"
DRAFT = "draft"


@dataclass(frozen=True)
class ReportContent:
    """What the clinician writes."""

    findings: dict[str, str]
    summary: str
    advice: str
    referral: str | None
    follow_up_days: int | None
    shared_with_family: bool
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Handover:
    """What finalising a version also writes: the family's share, and the audit entry made
    from the version (both in the version's transaction)."""

    shares: ReportShares
    audit: Callable[[Report], AuditEvent]


@dataclass(frozen=True)
class ReportAuthor:
    """Who writes it, and about which consultation."""

    consultation_id: str
    patient_id: str | None
    service: str
    clinician_id: str
    clinician_name: str


class ReportRecords:
    """The ``reports`` table."""

    def __init__(self, database: RecordsDatabase, sealer: Sealer) -> None:
        self._db = database
        self._sealer = sealer

    async def latest(self, consultation_id: str) -> Report | None:
        async def query(session: AsyncSession) -> Report | None:
            row = await _latest_row(session, consultation_id)
            return None if row is None else self._report_of(row)

        return await self._db.read(query)

    async def version(self, consultation_id: str, version: int) -> Report | None:
        statement = select(ReportRow).where(
            ReportRow.consultation_id == consultation_id, ReportRow.version == version
        )

        async def query(session: AsyncSession) -> Report | None:
            row = await session.scalar(statement)
            return None if row is None else self._report_of(row)

        return await self._db.read(query)

    async def latest_final(self, consultation_ids: list[str]) -> dict[str, Report]:
        """The newest final version of each consultation's report that has one."""
        if not consultation_ids:
            return {}
        statement = (
            select(ReportRow)
            .where(ReportRow.consultation_id.in_(consultation_ids), ReportRow.status == FINAL)
            .order_by(ReportRow.consultation_id, ReportRow.version)
        )

        async def query(session: AsyncSession) -> dict[str, Report]:
            return {
                row.consultation_id: self._report_of(row)
                for row in await session.scalars(statement)
            }

        return await self._db.read(query)

    async def save_draft(
        self, author: ReportAuthor, content: ReportContent, at: datetime
    ) -> Report | None:
        """Write the draft (a new version 1, or the current draft rewritten); ``None`` when the
        newest version is final (it must be amended instead)."""
        async with self._db.transaction() as session:
            await self._db.serialise(session, "report:" + author.consultation_id)
            row = await _latest_row(session, author.consultation_id, lock=True)
            if row is not None and row.status == FINAL:
                return None
            if row is None:
                row = ReportRow(consultation_id=author.consultation_id, version=1)
                session.add(row)
            self._fill(row, author, content, DRAFT, at, None)
            await session.flush()
            return self._report_of(row)

    async def finalise(
        self, consultation_id: str, at: datetime, handed: Handover
    ) -> tuple[Report, Share] | None:
        """Make the current draft final, in one transaction with its share and audit entry
        (a dropped connection leaves all three undone); ``None`` when there is no draft."""
        async with self._db.transaction() as session:
            await self._db.serialise(session, "report:" + consultation_id)
            row = await _latest_row(session, consultation_id, lock=True)
            if row is None or row.status != DRAFT:
                return None
            row.status = FINAL
            row.finalised_at = at
            return await self._hand_over(session, row, at, handed)

    async def amend(
        self,
        author: ReportAuthor,
        content: ReportContent,
        reason: str,
        at: datetime,
        handed: Handover,
    ) -> tuple[Report, Share] | None:
        """A new final version after the newest final one, in one transaction with its share
        and audit entry; ``None`` when none is final yet."""
        async with self._db.transaction() as session:
            await self._db.serialise(session, "report:" + author.consultation_id)
            row = await _latest_row(session, author.consultation_id, lock=True)
            if row is None or row.status != FINAL:
                return None
            amended = ReportRow(consultation_id=author.consultation_id, version=row.version + 1)
            self._fill(amended, author, content, FINAL, at, reason)
            amended.finalised_at = at
            session.add(amended)
            await session.flush()
            return await self._hand_over(session, amended, at, handed)

    async def _hand_over(
        self, session: AsyncSession, row: ReportRow, at: datetime, handed: Handover
    ) -> tuple[Report, Share]:
        report = self._report_of(row)
        await refresh(session, self._db.dialect, row.consultation_id, set())
        share = await handed.shares.ensure(session, row.consultation_id, at)
        session.add(row_of(handed.audit(report)))
        return report, share

    def _fill(
        self,
        row: ReportRow,
        author: ReportAuthor,
        content: ReportContent,
        status: str,
        at: datetime,
        reason: str | None,
    ) -> None:
        body: dict[str, Any] = {
            "findings": content.findings,
            "summary": content.summary,
            "advice": content.advice,
            "referral": content.referral,
            "amend_reason": reason,
            "attachments": list(content.attachments),
        }
        row_id = f"{author.consultation_id}/{row.version}"
        row.patient_id = author.patient_id
        row.service = author.service
        row.status = status
        row.body_sealed = self._sealer.seal(json.dumps(body), _TABLE, row_id, "body")
        row.follow_up_days = content.follow_up_days
        row.has_referral = bool(content.referral)
        row.shared_with_family = content.shared_with_family
        row.clinician_id = author.clinician_id
        row.clinician_name_sealed = self._sealer.seal(
            author.clinician_name, _TABLE, row_id, "clinician_name"
        )
        row.saved_at = at

    def _report_of(self, row: ReportRow) -> Report:
        row_id = f"{row.consultation_id}/{row.version}"
        body = json.loads(self._sealer.open(row.body_sealed, _TABLE, row_id, "body"))
        return Report(
            consultation_id=row.consultation_id,
            patient_id=row.patient_id,
            service=row.service,
            version=row.version,
            status=row.status,
            findings=dict(body["findings"]),
            summary=body["summary"],
            advice=body["advice"],
            referral=body["referral"],
            follow_up_days=row.follow_up_days,
            shared_with_family=row.shared_with_family,
            clinician_id=row.clinician_id,
            clinician_name=self._sealer.open(
                row.clinician_name_sealed, _TABLE, row_id, "clinician_name"
            ),
            saved_at=row.saved_at,
            finalised_at=row.finalised_at,
            amend_reason=body["amend_reason"],
            attachments=tuple(body.get("attachments", ())),
        )


async def _latest_row(
    session: AsyncSession, consultation_id: str, lock: bool = False
) -> ReportRow | None:
    statement = (
        select(ReportRow)
        .where(ReportRow.consultation_id == consultation_id)
        .order_by(ReportRow.version.desc())
        .limit(1)
    )
    if lock:
        statement = statement.with_for_update()
    return await session.scalar(statement)
