"""The ``flow ls calls`` footer when totals are counted, bounded or estimated, on both databases.

Counting is bounded at ``shellflow.model.history.COUNT_BOUND`` matches (10,000 in use); the
tests lower it so a few dozen calls cross it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
CALLS = 45


def _store_calls(url: str) -> list[str]:
    """45 calls one second apart, three of them still running; ids newest first."""
    from shellflow.model.calls import Call
    from shellflow.model.db import get_engine, session_scope

    with session_scope(url) as session:
        for n in range(CALLS):
            session.add(Call(
                id=f"{n:08d}-0000-4000-8000-000000000000", name=f"sock.{'ab'[n % 2]}",
                state="running" if n in (3, 20, 40) else "finished",
                started=T0 + timedelta(seconds=n),
            ))  # fmt: skip
    if url.startswith("postgresql"):
        with get_engine(url).connect() as conn:  # statistics, as autovacuum would keep them
            conn.exec_driver_sql("ANALYZE call")
    return [f"{n:08d}-0000-4000-8000-000000000000" for n in reversed(range(CALLS))]


@pytest.fixture
def newest_first(initialised_db: str) -> list[str]:
    return _store_calls(initialised_db)


@pytest.fixture
def small_bound(monkeypatch: pytest.MonkeyPatch) -> int:
    from shellflow.model import history

    monkeypatch.setattr(history, "COUNT_BOUND", 20)
    return 20


def _ids(stdout: str) -> list[str]:
    return [line.split("\t")[1] for line in stdout.splitlines()]


def footer(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


def test_totals_within_the_bound_are_exact(cli: Any, newest_first: list[str]) -> None:
    first = cli.ok("ls", "calls")
    assert _ids(first.stdout) == newest_first[:10]
    assert footer(first.stderr) == "Page 1 of 5 of 45 total records"
    assert footer(cli.ok("ls", "calls", "-u").stderr) == "Page 1 of 1 of 3 total records"


def test_beyond_the_bound_postgresql_estimates_and_sqlite_counts(
    cli: Any, initialised_db: str, newest_first: list[str], small_bound: int
) -> None:
    first = cli.ok("ls", "calls")
    assert _ids(first.stdout) == newest_first[:10]  # the page itself is never estimated
    if initialised_db.startswith("sqlite"):
        assert footer(first.stderr) == "Page 1 of 5 of 45 total records"
    else:
        found = re.fullmatch(r"Page 1 of ~(\d+) of ~(\d+) total records", footer(first.stderr))
        assert found, first.stderr
        pages, total = int(found[1]), int(found[2])
        assert total > small_bound and pages == -(-total // 10)
    # the few unfinished calls stay exact; so do filtered totals within the bound
    assert footer(cli.ok("ls", "calls", "-u").stderr) == "Page 1 of 1 of 3 total records"
    by_socket = cli.ok("ls", "calls", "--socket", "sock.b", "-r", "5", "-p", "5")
    assert footer(by_socket.stderr) == "Page 5 of 5 of 22 total records"
    assert _ids(by_socket.stdout) == [i for i in newest_first if int(i[:8]) % 2][20:22]


def test_a_page_that_is_not_full_tells_the_exact_total(
    cli: Any, newest_first: list[str], small_bound: int
) -> None:
    last = cli.ok("ls", "calls", "-p", "5")
    assert _ids(last.stdout) == newest_first[40:]
    assert footer(last.stderr) == "Page 5 of 5 of 45 total records"
    whole = cli.ok("ls", "calls", "-r", "100", "--json")
    assert len(whole.stdout.splitlines()) == CALLS
    assert footer(whole.stderr) == "Page 1 of 1 of 45 total records"
    ascending = cli.ok("ls", "calls", "-a", "-r", "20", "-p", "2")
    assert _ids(ascending.stdout) == list(reversed(newest_first))[20:40]
    beyond = cli.ok("ls", "calls", "-p", "50")
    assert _ids(beyond.stdout) == []
    assert not re.search(r"of ~?4[5-9]\d total", footer(beyond.stderr))  # no rows invented


def test_calls_not_started_yet_are_the_newest_on_both_databases(
    cli: Any, initialised_db: str, newest_first: list[str]
) -> None:
    """Calls sent with ``--async`` and not taken yet have no start time: newest first, they
    come first (PostgreSQL and SQLite alone would put them at opposite ends)."""
    from shellflow.model.calls import Call
    from shellflow.model.db import session_scope

    pending = [f"{n:08d}-0000-4000-8000-00000000000p" for n in range(3)]
    with session_scope(initialised_db) as session:
        for n, call_id in enumerate(pending):
            session.add(Call(id=call_id, name="sock.a", state="pending",
                             created=T0 + timedelta(days=1, seconds=n)))  # fmt: skip
    everything = [*reversed(pending), *newest_first]
    pages = [_ids(cli.ok("ls", "calls", "-r", "4", "-p", str(p)).stdout) for p in (1, 2, 13)]
    assert pages == [everything[0:4], everything[4:8], everything[48:]]
    assert footer(cli.ok("ls", "calls", "-r", "4").stderr) == "Page 1 of 12 of 48 total records"
    oldest_first = list(reversed(everything))
    for page in (1, 11, 12, 13):
        got = _ids(cli.ok("ls", "calls", "-a", "-r", "4", "-p", str(page)).stdout)
        assert got == oldest_first[(page - 1) * 4 : page * 4], page
    unfinished = _ids(cli.ok("ls", "calls", "-u").stdout)
    assert unfinished[:3] == list(reversed(pending)) and len(unfinished) == 6


def test_the_unfinished_filter_repeats_the_partial_index_predicate() -> None:
    """SQLite uses a partial index only when the query's WHERE term repeats its own."""
    import importlib

    from shellflow.model.calls import UNFINISHED_WHERE
    from shellflow.model.history import UNFINISHED, UNFINISHED_SQL

    migration = importlib.import_module(
        "shellflow.model.migrations.versions.0003_call_listing_indexes"
    )
    assert UNFINISHED_SQL == "c." + UNFINISHED_WHERE == "c." + migration.UNFINISHED_WHERE
    assert all(f"'{state}'" in UNFINISHED_WHERE for state in UNFINISHED)
