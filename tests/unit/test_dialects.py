"""Dialects are decided in the model: one timestamp format, and no branch above the model.

``shellflow.model.dialects`` is what the client, the dashboard and the commands ask instead
of comparing dialect names; these tests hold its values to what the ORM stores and what
SQLite computes, and keep dialect comparisons out of the layers above the model.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from shellflow.model.dialects import SQLITE_TIME, seconds_between, sql_time, times_of

PACKAGE = Path(__file__).resolve().parents[2] / "shellflow"
# A comparison of a dialect's name, or a URL's dialect read to branch on.
BRANCH = re.compile(
    r"dialect\w*(\.name)?\s*[!=]=|[!=]=\s*[\"'](sqlite|postgresql)[\"']|dialect_of\("
)


def test_a_time_is_naive_utc_text_on_sqlite() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert sql_time("sqlite", moment) == "2026-01-02 03:04:05.000006"
    # A whole second still has its microseconds: text compares and sorts as the ORM's does.
    assert sql_time("sqlite", moment.replace(microsecond=0)) == "2026-01-02 03:04:05.000000"


def test_a_time_in_another_zone_or_naive_is_stored_as_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert sql_time("sqlite", datetime(2026, 1, 2, 4, 0, tzinfo=paris)) == (
        "2026-01-02 03:00:00.000000"
    )
    assert sql_time("sqlite", datetime(2026, 1, 2, 3, 0)) == "2026-01-02 03:00:00.000000"
    stored = sql_time("postgresql", datetime(2026, 1, 2, 4, 0, tzinfo=paris))
    assert stored == datetime(2026, 1, 2, 3, 0, tzinfo=UTC) and stored.tzinfo is UTC
    assert sql_time("postgresql", datetime(2026, 1, 2, 3, 0)).tzinfo is UTC
    assert sql_time("sqlite", None) is None


def test_the_format_is_the_orms() -> None:
    """SQLAlchemy's SQLite DateTime stores this text; rows of both writers must compare."""
    from sqlalchemy.dialects.sqlite import DATETIME

    moment = datetime(2026, 5, 6, 7, 8, 9, 123456)
    bind = DATETIME().bind_processor(sqlite3)  # type: ignore[arg-type]
    assert bind is not None
    assert bind(moment) == sql_time("sqlite", moment) == moment.strftime(SQLITE_TIME)


def test_times_of_formats_only_the_times_of_a_row() -> None:
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    row = ("a", moment, None, 3)
    assert times_of("sqlite", row) == ("a", "2026-01-02 00:00:00.000000", None, 3)
    assert times_of("postgresql", row) is row


def test_seconds_between_on_sqlite() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE c (started TEXT, finished TEXT)")
    start = sql_time("sqlite", datetime(2026, 1, 1, tzinfo=UTC))
    end = sql_time("sqlite", datetime(2026, 1, 1, 0, 1, 30, 500000, tzinfo=UTC))
    conn.execute("INSERT INTO c VALUES (?, ?)", (start, end))
    (seconds,) = conn.execute(
        f"SELECT {seconds_between('sqlite', 'c.started', 'c.finished')} FROM c"
    ).fetchone()
    assert seconds == pytest.approx(90.5, abs=1e-3)


def test_seconds_between_on_postgresql_names_both_columns() -> None:
    expr = seconds_between("postgresql", "c.started", "c.finished")
    assert "c.finished - c.started" in expr


@pytest.mark.parametrize("folder", ["client", "tui", "commands"])
def test_no_dialect_branch_above_the_model(folder: str) -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if BRANCH.search(line)
    ]
    assert found == []


def test_the_branch_pattern_sees_branches() -> None:
    for line in (
        'if conn.dialect == "sqlite":',
        "if dialect_of(url) != 'postgresql':",
        'if engine.dialect.name == "sqlite":',
        'when = x if kind == "postgresql" else y',
    ):
        assert BRANCH.search(line), line
    assert not BRANCH.search("expr = _sort_expression(sort, conn.dialect)")
