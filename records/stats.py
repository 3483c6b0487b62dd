"""Programme figures as SQL aggregates: people served, consultations by outcome, waits and
lengths (p50/p90), no-shows, follow-ups due and kept, reports finalised and referrals, by
outlet, service or clinician; consultations and no-shows by week; the wait distribution.

Percentiles are continuous (linear interpolation, PostgreSQL's ``percentile_cont``); SQLite has
no such aggregate, so it numbers the rows with window functions and interpolates between the two
around ``p·(n−1)``, which gives the same figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Float,
    Integer,
    SQLColumnExpression,
    and_,
    case,
    distinct,
    func,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from records.appointments import NO_SHOW, due_epoch, kept_clause, latest_final_clause
from records.database import RecordsDatabase
from records.sql_time import epoch
from records.tables import AppointmentRow, ReportRow, VisitRow

GroupBy = Literal["outlet", "service", "clinician"]
PERCENTILES = (0.5, 0.9)
# Wait distribution buckets, in minutes (the last one is open-ended).
WAIT_BUCKETS_MIN = (0, 5, 10, 15, 30, 60, 120)
_ALL = "all"
_WEEK_S = 7 * 86400.0


@dataclass(frozen=True)
class StatsQuery:
    """Consultations checked in (appointments starting) in ``[start, end)``, optionally of one
    outlet, service or clinician; ``week_origin`` is the local Monday 00:00 the weeks count from."""

    start: datetime
    end: datetime
    week_origin: datetime
    outlet_id: str | None = None
    service: str | None = None
    clinician_id: str | None = None
    group_by: GroupBy | None = None


def query_for_days(
    first: date,
    last: date,
    zone: ZoneInfo,
    outlet_id: str | None = None,
    service: str | None = None,
    clinician_id: str | None = None,
    group_by: GroupBy | None = None,
) -> StatsQuery:
    """The query for local days ``first`` to ``last`` (both included) of the programme's zone;
    weeks start on the Monday on or before ``first``."""
    start = datetime.combine(first, time(), zone)
    end = datetime.combine(last + timedelta(days=1), time(), zone)
    monday = datetime.combine(first - timedelta(days=first.weekday()), time(), zone)
    return StatsQuery(start, end, monday, outlet_id, service, clinician_id, group_by)


def week_start(query: StatsQuery, week: int, zone: ZoneInfo) -> date:
    """The local Monday a week index of :meth:`ProgrammeStats.figures` begins on."""
    return query.week_origin.astimezone(zone).date() + timedelta(weeks=week)


def _empty_figures() -> dict[str, Any]:
    return {
        "people_served": 0,
        "consultations": 0,
        "outcomes": {},
        "wait_p50_s": None,
        "wait_p90_s": None,
        "length_p50_s": None,
        "length_p90_s": None,
        "appointments": 0,
        "no_shows": 0,
        "follow_ups_due": 0,
        "follow_ups_kept": 0,
        "reports_finalised": 0,
        "referrals": 0,
    }


class ProgrammeStats:
    """Read-only figures over ``visits``, ``reports`` and ``appointments``."""

    def __init__(self, database: RecordsDatabase) -> None:
        self._db = database

    async def figures(self, query: StatsQuery) -> dict[str, Any]:
        """Totals, one entry per group (when grouped), weeks and the wait distribution."""
        dialect = self._db.dialect

        async def read(session: AsyncSession) -> dict[str, Any]:
            figures: dict[str, dict[str, Any]] = {}
            keys = [None] if query.group_by is None else [None, query.group_by]
            for group in keys:
                for key, values in (await _figures(session, dialect, query, group)).items():
                    figures.setdefault(_label(group, key), _empty_figures()).update(values)
            totals = figures.pop(_ALL, _empty_figures())
            groups = [{"key": key[1:], **values} for key, values in sorted(figures.items())]
            return {
                "totals": totals,
                "groups": groups,
                "weeks": await _weeks(session, dialect, query),
                "wait_histogram": await _wait_histogram(session, dialect, query),
            }

        return await self._db.read(read)


def _label(group: GroupBy | None, key: Any) -> str:
    # Groups are kept apart from the totals by a prefix the totals' key cannot have.
    return _ALL if group is None else f"#{key}"


async def _figures(
    session: AsyncSession, dialect: str, query: StatsQuery, group: GroupBy | None
) -> dict[Any, dict[str, Any]]:
    """Every figure for one grouping (``None``: the totals), keyed by group value."""
    out: dict[Any, dict[str, Any]] = {}

    def put(key: Any, **values: Any) -> None:
        out.setdefault(key, {}).update(values)

    visit_key = _visit_key(group)
    started = VisitRow.started_at.is_not(None)
    rows = await session.execute(
        select(
            visit_key,
            func.count(),
            func.count(distinct(case((started, VisitRow.patient_id)))),
        )
        .where(*_visit_filter(query))
        .group_by(visit_key)
    )
    for key, consultations, people in rows:
        put(key, consultations=consultations, people_served=people)
    outcome = func.coalesce(VisitRow.outcome, "open")
    rows = await session.execute(
        select(visit_key, outcome, func.count())
        .where(*_visit_filter(query))
        .group_by(visit_key, outcome)
    )
    for key, name, count in rows:
        out.setdefault(key, {}).setdefault("outcomes", {})[name] = count
    wait = epoch(dialect, VisitRow.started_at) - epoch(dialect, VisitRow.checked_in_at)
    length = epoch(dialect, VisitRow.ended_at) - epoch(dialect, VisitRow.started_at)
    for name, value, present in (
        ("wait", wait, started),
        ("length", length, and_(started, VisitRow.ended_at.is_not(None))),
    ):
        for key, p50, p90 in await _percentiles(session, dialect, query, visit_key, value, present):
            put(key, **{f"{name}_p50_s": _round(p50), f"{name}_p90_s": _round(p90)})
    booking_key = _appointment_key(group)
    rows = await session.execute(
        select(
            booking_key,
            func.count(),
            func.count(case((AppointmentRow.status == NO_SHOW, 1))),
        )
        .where(*_appointment_filter(query))
        .group_by(booking_key)
    )
    for key, appointments, no_shows in rows:
        put(key, appointments=appointments, no_shows=no_shows)
    due = due_epoch(dialect)
    rows = await session.execute(
        select(visit_key, func.count(), func.count(case((kept_clause(), 1))))
        .select_from(VisitRow)
        .join(ReportRow, ReportRow.consultation_id == VisitRow.consultation_id)
        .where(
            *_visit_filter(query, checked_in_since=query.start.timestamp() - 731 * 86400.0),
            VisitRow.patient_id.is_not(None),
            ReportRow.follow_up_days.is_not(None),
            latest_final_clause(),
            due >= query.start.timestamp(),
            due < query.end.timestamp(),
        )
        .group_by(visit_key)
    )
    for key, due_count, kept in rows:
        put(key, follow_ups_due=due_count, follow_ups_kept=kept)
    finals = select(
        visit_key,
        func.count(distinct(ReportRow.consultation_id)),
        func.count(distinct(case((ReportRow.has_referral, ReportRow.consultation_id)))),
    ).where(
        ReportRow.status == "final",
        ReportRow.finalised_at >= query.start,
        ReportRow.finalised_at < query.end,
    )
    visit_filter = _visit_filter(query, by_time=False)
    if group is not None or visit_filter:
        # The visit says where and by whom; the programme's totals need the reports alone.
        finals = finals.join(VisitRow, ReportRow.consultation_id == VisitRow.consultation_id)
        finals = finals.where(*visit_filter)
    rows = await session.execute(finals.select_from(ReportRow).group_by(visit_key))
    for key, finalised, referrals in rows:
        put(key, reports_finalised=finalised, referrals=referrals)
    return out


async def _percentiles(
    session: AsyncSession,
    dialect: str,
    query: StatsQuery,
    key: SQLColumnExpression[Any],
    value: ColumnElement[float],
    present: ColumnElement[bool],
) -> list[tuple[Any, float | None, float | None]]:
    """p50 and p90 of ``value`` per ``key`` over the rows where ``present`` holds."""
    where = [*_visit_filter(query), present]
    if dialect == "postgresql":
        p50, p90 = (func.percentile_cont(p).within_group(value) for p in PERCENTILES)
        rows = await session.execute(select(key, p50, p90).where(*where).group_by(key))
        return [(k, a, b) for k, a, b in rows]
    numbered = (
        select(
            key.label("k"),
            value.label("v"),
            (func.row_number().over(partition_by=key, order_by=value) - 1).label("i"),
            func.count().over(partition_by=key).label("n"),
        )
        .where(*where)
        .subquery()
    )

    def interpolated(p: float) -> ColumnElement[float]:
        position = (numbered.c.n - 1) * p
        lower = position.cast(Integer)  # non-negative: truncation is floor
        fraction = position - lower
        return func.sum(
            case(
                (numbered.c.i == lower, numbered.c.v * (1 - fraction)),
                (numbered.c.i == lower + 1, numbered.c.v * fraction),
                else_=0.0,
            )
        ).cast(Float)

    rows = await session.execute(
        select(numbered.c.k, *(interpolated(p) for p in PERCENTILES)).group_by(numbered.c.k)
    )
    return [(k, a, b) for k, a, b in rows]


async def _weeks(session: AsyncSession, dialect: str, query: StatsQuery) -> list[dict[str, Any]]:
    """Consultations, people served and no-shows per week (weeks from ``week_origin``)."""
    origin = query.week_origin.timestamp()
    week = ((epoch(dialect, VisitRow.checked_in_at) - origin) / _WEEK_S).cast(Integer)
    counts: dict[int, dict[str, int]] = {}
    rows = await session.execute(
        select(week, func.count(), func.count(distinct(VisitRow.patient_id)))
        .where(*_visit_filter(query))
        .group_by(week)
    )
    for index, consultations, people in rows:
        counts[int(index)] = {"consultations": consultations, "patients": people, "no_shows": 0}
    booking_week = ((epoch(dialect, AppointmentRow.start_at) - origin) / _WEEK_S).cast(Integer)
    no_show_rows = await session.execute(
        select(booking_week, func.count())
        .where(*_appointment_filter(query), AppointmentRow.status == NO_SHOW)
        .group_by(booking_week)
    )
    for index, no_shows in no_show_rows:
        counts.setdefault(int(index), {"consultations": 0, "patients": 0})["no_shows"] = no_shows
    # Every week of the range, the empty ones too (a bar chart shows a gap, not a shorter year).
    weeks = math.ceil((query.end - query.week_origin).total_seconds() / _WEEK_S)
    empty = {"consultations": 0, "patients": 0, "no_shows": 0}
    return [{"week": index, **counts.get(index, empty)} for index in range(weeks)]


async def _wait_histogram(
    session: AsyncSession, dialect: str, query: StatsQuery
) -> list[dict[str, Any]]:
    wait_min = (epoch(dialect, VisitRow.started_at) - epoch(dialect, VisitRow.checked_in_at)) / 60
    bucket = case(
        *((wait_min < edge, index) for index, edge in enumerate(WAIT_BUCKETS_MIN[1:])),
        else_=len(WAIT_BUCKETS_MIN) - 1,
    )
    rows = await session.execute(
        select(bucket, func.count())
        .where(*_visit_filter(query), VisitRow.started_at.is_not(None))
        .group_by(bucket)
    )
    found = {int(index): count for index, count in rows}
    edges = [*WAIT_BUCKETS_MIN, None]
    return [
        {"from_min": edges[i], "to_min": edges[i + 1], "count": found.get(i, 0)}
        for i in range(len(WAIT_BUCKETS_MIN))
    ]


def _visit_key(group: GroupBy | None) -> SQLColumnExpression[Any]:
    if group is None:
        return literal(_ALL)
    return {
        "outlet": VisitRow.outlet_id,
        "service": VisitRow.service,
        "clinician": func.coalesce(VisitRow.clinician_id, ""),
    }[group]


def _appointment_key(group: GroupBy | None) -> SQLColumnExpression[Any]:
    if group is None:
        return literal(_ALL)
    return {
        "outlet": AppointmentRow.outlet_id,
        "service": AppointmentRow.service,
        "clinician": AppointmentRow.clinician_id,
    }[group]


def _visit_filter(
    query: StatsQuery, by_time: bool = True, checked_in_since: float | None = None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if by_time:
        since = query.start
        if checked_in_since is not None:
            since = datetime.fromtimestamp(checked_in_since, query.start.tzinfo)
        where += [VisitRow.checked_in_at >= since, VisitRow.checked_in_at < query.end]
    if query.outlet_id is not None:
        where.append(VisitRow.outlet_id == query.outlet_id)
    if query.service is not None:
        where.append(VisitRow.service == query.service)
    if query.clinician_id is not None:
        where.append(VisitRow.clinician_id == query.clinician_id)
    return where


def _appointment_filter(query: StatsQuery) -> list[ColumnElement[bool]]:
    where = [AppointmentRow.start_at >= query.start, AppointmentRow.start_at < query.end]
    if query.outlet_id is not None:
        where.append(AppointmentRow.outlet_id == query.outlet_id)
    if query.service is not None:
        where.append(AppointmentRow.service == query.service)
    if query.clinician_id is not None:
        where.append(AppointmentRow.clinician_id == query.clinician_id)
    return where


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)
