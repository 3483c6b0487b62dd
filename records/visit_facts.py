"""What the programme figures read of a consultation, kept on its visit row when it changes: the
wait (check-in to start) and length (start to end) in seconds, when its newest final report asks
the patient back (``follow_up_due_s``, epoch seconds) and whether they came back, when its report
was first finalised and whether the newest final version refers; and when the patient was last
checked in before it (seen, for the groupings).

The figures then aggregate plain columns through indexes instead of converting timestamps and
probing the reports and later visits for every row of a year. One definition serves the migration
that fills existing rows, the demonstration seed and every write (the keeper's milestones, a
report finalised or amended): :func:`refresh` recomputes the facts of the visits it selects.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from records.sql_time import epoch
from records.tables import GROUP_COLUMNS, ReportRow, VisitRow

FINAL = "final"
_DAY_S = 86400.0

_later = aliased(VisitRow)
_earlier = aliased(VisitRow)
# The groupings whose people served read their own "seen before" column.
SEEN_BEFORE = {
    None: "seen_before_at",
    "outlet": "seen_before_at_outlet",
    "service": "seen_before_at_service",
    "clinician": "seen_before_at_clinician",
}


def _before(started: bool, same: str | None = None) -> Any:
    """When the visit's patient last checked in before it (a consultation that started, when
    ``started``; at the same outlet, service or clinician, when ``same``): people served and
    patients per week count a visit only when that is before the range, so each patient once,
    without a DISTINCT over the range. Ties in time are broken by consultation id."""
    conditions = [
        _earlier.patient_id == VisitRow.patient_id,
        or_(
            _earlier.checked_in_at < VisitRow.checked_in_at,
            and_(
                _earlier.checked_in_at == VisitRow.checked_in_at,
                _earlier.consultation_id < VisitRow.consultation_id,
            ),
        ),
    ]
    if started:
        conditions.append(_earlier.started_at.is_not(None))
    if same is not None:
        column = GROUP_COLUMNS[same]
        conditions.append(getattr(_earlier, column) == getattr(VisitRow, column))
    return select(func.max(_earlier.checked_in_at)).where(*conditions).scalar_subquery()


def newest_final(column: Any, first: bool = False) -> Any:
    """``column`` of the visit's newest (or first) final report version (``NULL`` when none is
    final); a consultation's versions are read through their (consultation, status, version)
    index."""
    return (
        select(column)
        .where(ReportRow.consultation_id == VisitRow.consultation_id, ReportRow.status == FINAL)
        .order_by(ReportRow.version if first else ReportRow.version.desc())
        .limit(1)
        .scalar_subquery()
    )


def facts_update(dialect: str, where: ColumnElement[bool]) -> Any:
    """The statement that recomputes every fact of the selected visits."""
    due = case(
        (VisitRow.patient_id.is_(None), None),
        else_=epoch(dialect, VisitRow.checked_in_at)
        + newest_final(ReportRow.follow_up_days) * _DAY_S,
    )
    # The patient came back for the same service: a later consultation of theirs started.
    came_back = exists().where(
        _later.patient_id == VisitRow.patient_id,
        _later.service == VisitRow.service,
        _later.checked_in_at > VisitRow.checked_in_at,
        _later.started_at.is_not(None),
    )
    return (
        update(VisitRow)
        .where(where)
        .values(
            wait_s=epoch(dialect, VisitRow.started_at) - epoch(dialect, VisitRow.checked_in_at),
            length_s=epoch(dialect, VisitRow.ended_at) - epoch(dialect, VisitRow.started_at),
            follow_up_due_s=due,
            follow_up_kept=came_back,
            report_finalised_at=newest_final(ReportRow.finalised_at, first=True),
            report_refers=func.coalesce(newest_final(ReportRow.has_referral), false()),
            visited_before_at=_before(started=False),
            **{column: _before(True, group) for group, column in SEEN_BEFORE.items()},
        )
        .execution_options(synchronize_session=False)
    )


async def refresh(
    session: AsyncSession, dialect: str, consultation_id: str, patients: set[str | None]
) -> None:
    """After a visit or its report changed: its facts, and those of every visit of its patients
    (the one before and after a change of patient), whose follow-up may now be kept."""
    where = VisitRow.consultation_id == consultation_id
    known = sorted(p for p in patients if p is not None)
    if known:
        where = or_(where, VisitRow.patient_id.in_(known))
    await session.execute(facts_update(dialect, where))
