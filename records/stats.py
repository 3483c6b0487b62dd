"""Programme figures as SQL aggregates: people served, consultations by outcome, waits and
lengths (p50/p90), no-shows, follow-ups due and kept, reports finalised and referrals, by
outlet, service or clinician; consultations and no-shows by week; the wait distribution.

Percentiles are continuous (linear interpolation between the two values around ``p·(n−1)``, as
PostgreSQL's ``percentile_cont``): the programme's from an offset into an index in the duration's
order, a grouping's by ``percentile_cont`` on PostgreSQL and by ranks read through such an index
on SQLite. The per-visit facts the figures read are kept on the visit rows
(:mod:`records.visit_facts`), so every figure is one pass over an index range.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    SQLColumnExpression,
    Table,
    and_,
    case,
    column,
    delete,
    distinct,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    values,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlalchemy.sql.operators import custom_op

from records.appointments import NO_SHOW
from records.columns import UtcDateTime, utc
from records.database import RecordsDatabase
from records.tables import GROUP_COLUMNS, AppointmentRow, VisitRow
from records.visit_facts import SEEN_BEFORE

GroupBy = Literal["outlet", "service", "clinician"]
PERCENTILES = (0.5, 0.9)
# Wait distribution buckets, in minutes (the last one is open-ended).
WAIT_BUCKETS_MIN = (0, 5, 10, 15, 30, 60, 120)
_BUCKETS = len(WAIT_BUCKETS_MIN)
_ALL = "all"
# The durations with percentiles, by the name their figures start with.
_DURATIONS = {"wait": VisitRow.wait_s, "length": VisitRow.length_s}
_GROUP_COLUMN = {group: getattr(VisitRow, column) for group, column in GROUP_COLUMNS.items()}
# PostgreSQL's memory for each sort of the figures (an admin's read): a grouping reads its
# group's index in order, but a filter combined with a grouping counts people served with
# DISTINCT, which sorts the range's visits (a year's need about 10 MB).
_PG_WORK_MEM = "32MB"
# SQLite's ranks of one duration (its rowid alias numbers the rows in insertion order); a
# temporary table is the connection's own, and emptied before each use.
_RANKS = Table(
    "figure_ranks",
    MetaData(),
    Column("rank", Integer, primary_key=True),
    Column("v", Float),
    schema="temp",
)
_RANKS_DDL = "CREATE TEMP TABLE IF NOT EXISTS figure_ranks (rank INTEGER PRIMARY KEY, v REAL)"
# SQLite's weeks of a range, numbered by their rowid alias: a join from them to the time index
# then gives the visits week by week in that order, so grouping by week sorts nothing (over a
# table of values SQLite sorted the range's visits by week: 60-90 ms → 25 ms a year).
_WEEKS = Table(
    "figure_weeks",
    MetaData(),
    Column("i", Integer, primary_key=True),
    Column("s", UtcDateTime()),
    Column("e", UtcDateTime()),
    schema="temp",
)
_WEEKS_DDL = "CREATE TEMP TABLE IF NOT EXISTS figure_weeks (i INTEGER PRIMARY KEY, s, e)"
# Ranks read per statement (SQLite allows 32,766 bound values).
_ROWIDS_PER_QUERY = 5000
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


# Figures that add up over the groups of a grouping: the totals of a grouped query sum them
# instead of reading the rows again (people served and percentiles do not add up).
_ADDITIVE = (
    "appointments",
    "no_shows",
    "follow_ups_due",
    "follow_ups_kept",
    "reports_finalised",
    "referrals",
)


class ProgrammeStats:
    """Read-only figures over ``visits`` (with the facts :mod:`records.visit_facts` keeps on
    them) and ``appointments``."""

    def __init__(self, database: RecordsDatabase) -> None:
        self._db = database

    async def figures(self, query: StatsQuery) -> dict[str, Any]:
        """Totals, one entry per group (when grouped), weeks and the wait distribution."""
        dialect = self._db.dialect

        async def read(session: AsyncSession) -> dict[str, Any]:
            if dialect == "postgresql":
                # The best plan depends on the range and offsets (a year is most of the table, a
                # month a small part): planned for the values, never a generic plan. What is
                # sorted is sorted in memory (4 MB, the default, spills a year to disk).
                await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
                await session.execute(text(f"SET LOCAL work_mem = '{_PG_WORK_MEM}'"))
                # A grouping's pass, without ordered aggregates now, was planned as a parallel
                # scan: its workers' start and their contention with the server's other work
                # cost more than the 100,000 rows they split (wall 170-440 ms against 160-230).
                await session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            groups: dict[Any, dict[str, Any]] = {}
            if query.group_by is not None:
                groups = await _figures(session, dialect, query, query.group_by, True)
            totals_by_key = await _figures(session, dialect, query, None, query.group_by is None)
            totals = totals_by_key.pop(_ALL, _empty_figures())
            histogram = totals.pop("wait_histogram", None) or _histogram([0] * _BUCKETS)
            weekly = totals.pop("weekly", {})
            if query.group_by is not None:
                _add_up(totals, groups.values())
            return {
                "totals": totals,
                "groups": [{"key": key, **values} for key, values in sorted(groups.items())],
                "weeks": await _weeks(session, dialect, query, weekly),
                "wait_histogram": histogram,
            }

        return await self._db.read(read)


def _add_up(totals: dict[str, Any], groups: Iterable[dict[str, Any]]) -> None:
    for figures in groups:
        for name in _ADDITIVE:
            totals[name] += figures[name]
        for outcome, count in figures["outcomes"].items():
            totals["outcomes"][outcome] = totals["outcomes"].get(outcome, 0) + count


async def _figures(
    session: AsyncSession, dialect: str, query: StatsQuery, group: GroupBy | None, additive: bool
) -> dict[Any, dict[str, Any]]:
    """The figures of one grouping (``None``: the totals, with the wait distribution), keyed by
    group value; the additive ones only when ``additive``."""
    out: dict[Any, dict[str, Any]] = {}

    def put(key: Any, **values: Any) -> None:
        out.setdefault(key, _empty_figures()).update(values)

    # The programme's figures are read week by week (the weeks' bars come from the same pass)
    # and added up: each visit is in one week, and each figure but the percentiles adds up. A
    # grouping's are grouped by the plain column, so both engines read the groups in the order
    # of the grouping's index (records.tables.group_pass_index) instead of sorting the range.
    weeks = None
    if group is None:
        weeks = await _weeks_of(session, dialect, query)
        key = weeks.c.i
    else:
        key = _GROUP_COLUMN[group]
    figures: dict[str, Any] = {
        "consultations": func.count(),
        "people_served": _people_served(query, group),
    }
    if weeks is not None:
        figures["patients"] = _first_visits_of_the_week(weeks)
    figures.update({f"{name}_n": func.count(value) for name, value in _DURATIONS.items()})
    outcomes = await _outcome_names(session) if additive and group is not None else []
    for outcome in outcomes:
        figures[f"outcome_{len(figures)}"] = func.count().filter(
            VisitRow.outcome.is_(None) if outcome is None else VisitRow.outcome == outcome
        )
    names = list(figures)
    in_order = _reads_in_group_order(dialect, group)
    statement = (
        select(key, *figures.values())
        .where(*_visit_filter(query, by_time=group is not None, in_order=in_order))
        .group_by(key)
    )
    if weeks is not None:
        # Each week's visits are a range of the time index.
        in_week = and_(VisitRow.checked_in_at >= weeks.c.s, VisitRow.checked_in_at < weeks.c.e)
        statement = statement.select_from(weeks).join(VisitRow, in_week)
    rows = await session.execute(statement)
    for row in rows:
        values = dict(zip(names, row[1:], strict=True))
        counts = [values.pop(name) for name in names if name.startswith("outcome_")]
        values["outcomes"] = {
            "open" if outcome is None else outcome: count
            for outcome, count in zip(outcomes, counts, strict=True)
            if count
        }
        put(_group_name(row[0]), **values)
    if group is None:
        out = {_ALL: _week_by_week(out)} if out else {}
        if out:
            out[_ALL].update(await _by_index_ranges(session, dialect, query, additive))
    for name, value in _DURATIONS.items():
        counts_of = {k: values.pop(f"{name}_n") for k, values in out.items()}
        found = await _percentiles(session, dialect, query, group, value, counts_of)
        for k, (p50, p90) in found.items():
            put(k, **{f"{name}_p50_s": _round(p50), f"{name}_p90_s": _round(p90)})
    if not additive:
        return out
    booking_key = _appointment_key(group)
    rows = await session.execute(
        select(
            booking_key,
            func.count(),
            func.count().filter(AppointmentRow.status == NO_SHOW),
        )
        .where(*_appointment_filter(query))
        .group_by(booking_key)
    )
    for k, appointments, no_shows in rows:
        put(k, appointments=appointments, no_shows=no_shows)
    for k, ranged_counts in (await _follow_ups_and_reports(session, dialect, query, group)).items():
        put(k, **ranged_counts)
    return out


async def _follow_ups_and_reports(
    session: AsyncSession, dialect: str, query: StatsQuery, group: GroupBy | None
) -> dict[Any, dict[str, int]]:
    """Follow-ups due (and kept) and reports finalised (and referring) in the range, by group.

    Each is a range of its own index, in time order: PostgreSQL hashes a range's visits by group.
    SQLite would sort them, so a grouping's are counted in one pass over the grouping's index
    instead, group by group."""
    ranged = (
        (VisitRow.follow_up_due_s, query.start.timestamp(), query.end.timestamp()),
        (VisitRow.report_finalised_at, query.start, query.end),
    )
    flags = (VisitRow.follow_up_kept, VisitRow.report_refers)
    names = (("follow_ups_due", "follow_ups_kept"), ("reports_finalised", "referrals"))
    key: SQLColumnExpression[Any] = literal(_ALL) if group is None else _GROUP_COLUMN[group]
    in_order = _reads_in_group_order(dialect, group)
    conditions = [
        and_(_unindexed(counted, in_order) >= since, _unindexed(counted, in_order) < until)
        for counted, since, until in ranged
    ]
    found: dict[Any, dict[str, int]] = {}
    parts = list(zip(conditions, flags, names, strict=True))
    for chosen in [parts] if in_order else [[part] for part in parts]:
        counts = [
            count
            for condition, flag, _ in chosen
            for count in (
                func.count().filter(condition),
                func.count().filter(and_(condition, flag)),
            )
        ]
        rows = await session.execute(
            select(key, *counts)
            .where(
                or_(*(condition for condition, _, _ in chosen)),
                *_visit_filter(query, by_time=False),
            )
            .group_by(key)
        )
        counted_names = [name for _, _, pair in chosen for name in pair]
        for k, *numbers in rows:
            found.setdefault(_group_name(k), {}).update(zip(counted_names, numbers, strict=True))
    return found


def _group_name(key: Any) -> Any:
    """A group's key as the figures name it: a consultation no clinician took is under ""."""
    return "" if key is None else key


def _reads_in_group_order(dialect: str, group: GroupBy | None) -> bool:
    """Whether a grouping's counts read the grouping's index in its order (SQLite, which would
    otherwise sort the range's visits by group; PostgreSQL hashes them)."""
    return group is not None and dialect == "sqlite"


async def _outcome_names(session: AsyncSession) -> list[str | None]:
    """Every outcome a visit has (``None``: not ended), found by stepping through the outcome
    index from one value to the next, so the figures count each in the same pass."""
    first = select(func.min(VisitRow.outcome).label("name")).cte("outcome_names", recursive=True)
    following = (
        select(func.min(VisitRow.outcome)).where(VisitRow.outcome > first.c.name).scalar_subquery()
    )
    names = first.union_all(select(following).where(first.c.name.is_not(None)))
    found = await session.scalars(select(names.c.name).where(names.c.name.is_not(None)))
    return [None, *found]


def _people_served(query: StatsQuery, group: GroupBy | None) -> ColumnElement[int]:
    """Distinct patients whose consultation started. Counted as the visits whose patient was
    not seen before the range (in the group, or under the filters): one visit per patient, read
    from :mod:`records.visit_facts`' columns; a combination of filters and grouping without one
    of its own counts distinct patients."""
    scope = {name for name in _GROUP_COLUMN if getattr(query, _GROUP_COLUMN[name].key)}
    if group is not None:
        scope.add(group)
    started = and_(VisitRow.wait_s.is_not(None), VisitRow.patient_id.is_not(None))
    if len(scope) > 1:
        return func.count(distinct(case((started, VisitRow.patient_id))))
    before = getattr(VisitRow, SEEN_BEFORE[next(iter(scope), None)])
    first_seen = or_(before.is_(None), before < query.start)
    return func.count().filter(and_(started, first_seen))


async def _percentiles(
    session: AsyncSession,
    dialect: str,
    query: StatsQuery,
    group: GroupBy | None,
    value: InstrumentedAttribute[float | None],
    counts: dict[Any, int],
) -> dict[Any, tuple[float, float]]:
    """p50 and p90 of ``value`` per group, ``counts`` holding how many values each has."""
    if group is None:
        return await _total_percentiles(session, dialect, query, value, counts)
    if dialect == "postgresql":
        return await _group_percentiles(session, query, group, value)
    return await _ranked_percentiles(session, query, group, value, counts)


async def _group_percentiles(
    session: AsyncSession,
    query: StatsQuery,
    group: GroupBy,
    value: InstrumentedAttribute[float | None],
) -> dict[Any, tuple[float, float]]:
    """PostgreSQL: ``percentile_cont`` per group, one duration a statement, so each reads an
    index in (group, duration) order and only sorts within a group (all four in one statement
    sorted the range's visits by group and again by each duration: 100-150 ms a year)."""
    column = _GROUP_COLUMN[group]
    p50, p90 = (func.percentile_cont(p).within_group(value) for p in PERCENTILES)
    rows = await session.execute(
        select(column, p50, p90).where(*_visit_filter(query), value.is_not(None)).group_by(column)
    )
    return {_group_name(key): (low, high) for key, low, high in rows}


async def _ranked_percentiles(
    session: AsyncSession,
    query: StatsQuery,
    group: GroupBy,
    value: InstrumentedAttribute[float | None],
    counts: dict[Any, int],
) -> dict[Any, tuple[float, float]]:
    """SQLite has neither ``percentile_cont`` nor fast window functions (about a microsecond a
    row), so the values are copied, ordered by group and value, into a temporary table: its
    rowids are then their ranks, and the two values around ``p·(n−1)`` of each group are read
    by rowid and interpolated. The copy reads an index kept in that order, so nothing is
    sorted."""
    ranked = _RANKS
    await session.execute(text(_RANKS_DDL))
    await session.execute(delete(ranked))
    ordered = (
        select(value)
        .where(*_visit_filter(query, in_order=True), value.is_not(None))
        .order_by(_GROUP_COLUMN[group], value)
    )
    await session.execute(insert(ranked).from_select(["v"], ordered))
    first = await session.scalar(select(func.min(ranked.c.rank))) or 0
    wanted: dict[Any, list[tuple[int, int, float]]] = {}
    for key in sorted(counts):  # the order SQLite's ORDER BY gave (NULL and "" first)
        n = counts[key]
        if n:
            wanted[key] = [_neighbours(first, n, p) for p in PERCENTILES]
        first += n
    rowids = {r for bounds in wanted.values() for lower, upper, _ in bounds for r in (lower, upper)}
    values: dict[int, float] = {}
    for chunk in _chunks(sorted(rowids), _ROWIDS_PER_QUERY):
        rows = await session.execute(
            select(ranked.c.rank, ranked.c.v).where(ranked.c.rank.in_(chunk))
        )
        values.update({rowid: v for rowid, v in rows})
    return {
        key: (
            _between(values, *bounds[0]),
            _between(values, *bounds[1]),
        )
        for key, bounds in wanted.items()
    }


async def _total_percentiles(
    session: AsyncSession,
    dialect: str,
    query: StatsQuery,
    value: InstrumentedAttribute[float | None],
    counts: dict[Any, int],
) -> dict[Any, tuple[float, float]]:
    """Without groups, the two values around each percentile are read straight off the index
    in the duration's order (an offset into it, from the end nearer the percentile: nothing is
    copied or sorted; PostgreSQL's ``percentile_cont`` would sort the year's values for each
    percentile)."""
    n = counts.get(_ALL, 0)
    if not n:
        return {}
    found = []
    for p in PERCENTILES:
        lower, upper, fraction = _neighbours(0, n, p)
        # An offset is read past: a percentile in the upper half is reached from the top.
        from_top = lower > (n - 1) / 2
        rows = await session.scalars(
            select(value)
            .where(*_visit_filter(query, in_order=dialect == "sqlite"), value.is_not(None))
            .order_by(value.desc() if from_top else value)
            .limit(upper - lower + 1)
            .offset(n - 1 - upper if from_top else lower)
        )
        pair = sorted(float(v) for v in rows if v is not None)
        found.append(pair[0] + (pair[-1] - pair[0]) * fraction)
    return {_ALL: (found[0], found[1])}


def _neighbours(first: int, n: int, p: float) -> tuple[int, int, float]:
    """The rowids of the two values around ``p·(n−1)`` in a group starting at rowid ``first``,
    and how far between them the percentile lies."""
    position = (n - 1) * p
    lower = math.floor(position)
    return first + lower, first + min(lower + 1, n - 1), position - lower


def _between(values: dict[int, float], lower: int, upper: int, fraction: float) -> float:
    return values[lower] + (values[upper] - values[lower]) * fraction


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _by_index_ranges(
    session: AsyncSession, dialect: str, query: StatsQuery, outcomes: bool
) -> dict[str, Any]:
    """The programme's wait distribution and (when ``outcomes``) its outcomes, each count one
    range of an index (waits by the wait index, an outcome by the outcome index): a few narrow
    ranges instead of a dozen conditions tested on every visit of the year."""
    where = _visit_filter(query, in_order=dialect == "sqlite")
    names = await _outcome_names(session) if outcomes else []
    counts = [select(func.count()).where(*where, bucket) for bucket in _bucket_clauses()]
    counts += [
        select(func.count()).where(
            *where, VisitRow.outcome.is_(None) if name is None else VisitRow.outcome == name
        )
        for name in names
    ]
    row = (await session.execute(select(*(c.scalar_subquery() for c in counts)))).one()
    found: dict[str, Any] = {"wait_histogram": _histogram(list(row[:_BUCKETS]))}
    if outcomes:
        found["outcomes"] = {
            "open" if name is None else name: count
            for name, count in zip(names, row[_BUCKETS:], strict=True)
            if count
        }
    return found


def _bucket_clauses() -> list[ColumnElement[bool]]:
    """The wait distribution's buckets, as conditions on the wait in seconds."""
    edges = [minutes * 60.0 for minutes in WAIT_BUCKETS_MIN[1:]]
    below = [VisitRow.wait_s < edge for edge in edges]
    at_least = [VisitRow.wait_s >= edge for edge in edges]
    # The first bucket has no lower bound and the last no upper one.
    return [
        below[0],
        *(and_(a, b) for a, b in zip(at_least, below[1:], strict=False)),
        at_least[-1],
    ]


def _histogram(counts: list[int]) -> list[dict[str, Any]]:
    edges = [*WAIT_BUCKETS_MIN, None]
    return [
        {"from_min": edges[i], "to_min": edges[i + 1], "count": counts[i]} for i in range(_BUCKETS)
    ]


async def _weeks_of(session: AsyncSession, dialect: str, query: StatsQuery) -> Any:
    """The weeks of the range (``i`` from 0; ``s`` and ``e``: where the range's part of each
    begins and ends): a table of values, or on SQLite the connection's temporary table of
    them, filled anew."""
    origin = query.week_origin.timestamp()
    count = math.ceil((query.end - query.week_origin).total_seconds() / _WEEK_S)
    bounds = [
        (
            index,
            max(utc(origin + index * _WEEK_S), query.start),
            min(utc(origin + (index + 1) * _WEEK_S), query.end),
        )
        for index in range(count)
    ]
    if dialect == "sqlite":
        await session.execute(text(_WEEKS_DDL))
        await session.execute(delete(_WEEKS))
        await session.execute(
            insert(_WEEKS), [dict(zip("ise", week, strict=True)) for week in bounds]
        )
        return _WEEKS
    columns = (column("i", Integer), column("s", UtcDateTime()), column("e", UtcDateTime()))
    return values(*columns).data(bounds).cte("weeks")


def _first_visits_of_the_week(weeks: Any) -> ColumnElement[int]:
    """Patients of a week: a patient counts at their first visit of the week in the range, the
    one whose patient was not visited before the week's part of the range began (no DISTINCT)."""
    before = VisitRow.visited_before_at
    first_visit = and_(VisitRow.patient_id.is_not(None), or_(before.is_(None), before < weeks.c.s))
    return func.count().filter(first_visit)


def _week_by_week(weeks: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """The programme's figures added up from its weeks' (``weekly``: each week's consultations
    and patients)."""
    totals = _empty_figures()
    totals["weekly"] = {}
    for index, figures in weeks.items():
        totals["weekly"][int(index)] = {
            "consultations": figures["consultations"],
            "patients": figures.pop("patients"),
        }
        for name, value in figures.items():
            if isinstance(value, int):
                totals[name] = (totals.get(name) or 0) + value
    return totals


async def _weeks(
    session: AsyncSession, dialect: str, query: StatsQuery, weekly: dict[int, dict[str, int]]
) -> list[dict[str, Any]]:
    """Consultations and patients per week (from the programme's pass) and no-shows per week,
    each booking a range of the bookings' time index in its week."""
    counts = {index: {**week, "no_shows": 0} for index, week in weekly.items()}
    weeks = await _weeks_of(session, dialect, query)
    in_week = and_(AppointmentRow.start_at >= weeks.c.s, AppointmentRow.start_at < weeks.c.e)
    no_show_rows = await session.execute(
        select(weeks.c.i, func.count())
        .select_from(weeks)
        .join(AppointmentRow, in_week)
        .where(*_appointment_filter(query, by_time=False), AppointmentRow.status == NO_SHOW)
        .group_by(weeks.c.i)
    )
    for index, no_shows in no_show_rows:
        counts.setdefault(int(index), {"consultations": 0, "patients": 0})["no_shows"] = no_shows
    # Every week of the range, the empty ones too (a bar chart shows a gap, not a shorter year).
    count = math.ceil((query.end - query.week_origin).total_seconds() / _WEEK_S)
    empty = {"consultations": 0, "patients": 0, "no_shows": 0}
    return [{"week": index, **counts.get(index, empty)} for index in range(count)]


def _appointment_key(group: GroupBy | None) -> SQLColumnExpression[Any]:
    if group is None:
        return literal(_ALL)
    return {
        "outlet": AppointmentRow.outlet_id,
        "service": AppointmentRow.service,
        "clinician": AppointmentRow.clinician_id,
    }[group]


def _visit_filter(
    query: StatsQuery, by_time: bool = True, in_order: bool = False
) -> list[ColumnElement[bool]]:
    """The query's conditions on the visits. ``in_order`` (SQLite): the time range is written
    ``+checked_in_at``, which SQLite's planner does not match to an index, so it reads one in
    the order asked for (:func:`records.tables.figure_order_index`) instead of a time range
    it would have to sort."""
    where: list[ColumnElement[bool]] = []
    if by_time:
        checked_in = _unindexed(VisitRow.checked_in_at, in_order)
        where += [checked_in >= query.start, checked_in < query.end]
    if query.outlet_id is not None:
        where.append(VisitRow.outlet_id == query.outlet_id)
    if query.service is not None:
        where.append(VisitRow.service == query.service)
    if query.clinician_id is not None:
        where.append(VisitRow.clinician_id == query.clinician_id)
    return where


def _unindexed(column: InstrumentedAttribute[Any], in_order: bool) -> ColumnElement[Any]:
    """``column``, written ``+column`` when ``in_order`` (SQLite): a term its planner does not
    match to an index, so it reads the index that gives the order the statement asks for."""
    if in_order:
        return UnaryExpression(column.expression, operator=custom_op("+"), type_=column.type)
    return column.expression


def _appointment_filter(query: StatsQuery, by_time: bool = True) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if by_time:
        where += [AppointmentRow.start_at >= query.start, AppointmentRow.start_at < query.end]
    if query.outlet_id is not None:
        where.append(AppointmentRow.outlet_id == query.outlet_id)
    if query.service is not None:
        where.append(AppointmentRow.service == query.service)
    if query.clinician_id is not None:
        where.append(AppointmentRow.clinician_id == query.clinician_id)
    return where


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)
