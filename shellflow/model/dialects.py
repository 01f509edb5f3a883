"""What differs between SQLite and PostgreSQL in SQL text and values, decided here once.

Callers outside the model (the client, the dashboard, the commands) ask these functions
instead of comparing dialect names themselves, so supporting a database, or changing how
one stores a value, is a change in one module. No SQLAlchemy here: the light path (shell
completion, ``flow task run --async``) uses it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# SQLAlchemy's text form of a DateTime on SQLite, which every writer of SQLite rows uses so
# that rows written by the ORM, the light path and the worker's records compare and sort
# as the same kind of value.
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def sql_time(dialect: str, value: datetime | None) -> Any:
    """A time as the database stores it: UTC, aware on PostgreSQL, naive text on SQLite.

    The one timestamp format of shellflow's records. A naive time is taken to be UTC already
    (as ``shellflow.model.base.UTCDateTime`` takes it), an aware one is moved to UTC first.
    """
    if value is None:
        return None
    if value.tzinfo is not UTC:  # the common case (times made with datetime.now(UTC)) skips
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if dialect == "postgresql":
        return value
    return value.replace(tzinfo=None).strftime(SQLITE_TIME)


def times_of(dialect: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row's datetime values as :func:`sql_time` stores them; other values as they are."""
    if dialect == "postgresql":
        return row  # psycopg2 sends aware datetimes as they are
    return tuple(sql_time(dialect, v) if isinstance(v, datetime) else v for v in row)


def placeholder(dialect: str) -> str:
    """The driver's parameter mark: psycopg2's ``%s`` or sqlite3's ``?``."""
    return "%s" if dialect == "postgresql" else "?"


def seconds_between(dialect: str, start: str, end: str) -> str:
    """An SQL expression for the seconds from ``start`` to ``end`` (two time columns)."""
    if dialect == "postgresql":
        return f"EXTRACT(EPOCH FROM ({end} - {start}))"
    return f"(julianday({end}) - julianday({start})) * 86400.0"
