"""Time arithmetic in SQL that both engines run: seconds since the epoch of a timestamp column
(SQLite keeps text, PostgreSQL ``timestamptz``), for waits, lengths, due dates and week buckets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, SQLColumnExpression, func
from sqlalchemy.sql.elements import ColumnElement

# Where the fraction of a second starts in SQLite's text ("YYYY-MM-DD HH:MM:SS.ffffff").
_FRACTION_AT = 20


def epoch(dialect: str, column: SQLColumnExpression[Any]) -> ColumnElement[float]:
    """Seconds since 1970 (UTC) of a timestamp column, to the microsecond (SQLite's julianday()
    would keep only about 50 µs)."""
    if dialect == "sqlite":
        fraction = func.substr(column, _FRACTION_AT).cast(Float)
        return (func.unixepoch(column) + fraction).cast(Float)
    return func.extract("epoch", column).cast(Float)
