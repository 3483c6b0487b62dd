"""Time arithmetic in SQL that both engines run: seconds since the epoch of a timestamp column
(SQLite keeps text, PostgreSQL ``timestamptz``), for waits, lengths, due dates and week buckets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, SQLColumnExpression, func
from sqlalchemy.sql.elements import ColumnElement

# julianday() of 1970-01-01T00:00Z.
_UNIX_JULIAN_DAY = 2440587.5


def epoch(dialect: str, column: SQLColumnExpression[Any]) -> ColumnElement[float]:
    """Seconds since 1970 (UTC) of a timestamp column."""
    if dialect == "sqlite":
        return ((func.julianday(column) - _UNIX_JULIAN_DAY) * 86400.0).cast(Float)
    return func.extract("epoch", column).cast(Float)
