"""Metrics kept for analysis: the roll-up of call records into per-socket, per-minute rows,
``flow ls metrics`` and its rights, retention. On SQLite and PostgreSQL; the roll-up is
driven directly (``roll_up(engine, now)``) rather than waited for."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shellflow.errors import ExitCode
from tests.integration.test_row_security import pg_db  # noqa: F401  (a fixture)
from tests.integration.test_scoped_rights import as_alice, as_owner, world  # noqa: F401

M = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)  # a whole minute
NOW = M + timedelta(minutes=2, seconds=5)


def add_calls(url: str, socket: str, minute: datetime, latencies: list[float | None],
              failed: int = 0, prefix: str = "") -> None:  # fmt: skip
    """Calls of ``socket`` started in ``minute``, each running for its latency (None: still
    running); the first ``failed`` of them failed."""
    from sqlalchemy import select

    import shellflow.model.tables  # noqa: F401
    from shellflow.model.calls import Call
    from shellflow.model.db import session_scope
    from shellflow.model.network import Socket

    with session_scope(url) as session:
        socket_id = session.execute(select(Socket.id).where(Socket.name == socket)).scalar()
        for n, seconds in enumerate(latencies):
            started = minute + timedelta(seconds=n % 60, milliseconds=n)
            state = "running" if seconds is None else "failed" if n < failed else "finished"
            session.add(Call(
                id=f"{prefix}{socket}-{minute:%H%M}-{n:05d}", name=socket, state=state,
                socket_id=socket_id, started=started,
                finished=None if seconds is None else started + timedelta(seconds=seconds),
            ))  # fmt: skip


def roll(url: str, now: datetime = NOW) -> int:
    from shellflow.engine.fleet.rollup import roll_up
    from shellflow.model.db import get_engine

    return roll_up(get_engine(url), now)


def kept(cli: Any, *args: str) -> list[dict[str, Any]]:
    out = cli.ok("ls", "metrics", "--json", "--since", "2026-01-01", *args).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_a_minute_rolled_up_twice_keeps_one_row_with_its_percentiles(
    cli: Any,
    world: str,  # noqa: F811
) -> None:
    world_calls = kept(cli)  # the world's own calls (2026-01-02 03:04:05..07) not rolled up yet
    assert world_calls == []
    add_calls(world, "s1", M, [float(n) for n in range(1, 101)], failed=7)
    add_calls(world, "s1", M, [None, None], prefix="r")  # still running: counted, no latency
    add_calls(world, "s2", M + timedelta(minutes=1), [0.5])
    assert roll(world) == 4
    first = kept(cli)
    rows = {(r["socket"], r["minute"]): r for r in first}
    # The world's own calls (s1, s2 and "loose" of no socket, at 03:04:05..07) count too.
    s1 = rows[("s1", "2026-01-02T03:04Z")]
    assert (s1["calls"], s1["failures"]) == (103, 7)
    assert (s1["p50"], s1["p90"], s1["p99"], s1["max"]) == (50.0, 90.0, 99.0, 100.0)
    assert s1["queue_depth"] is None
    s2 = rows[("s2", "2026-01-02T03:05Z")]
    assert (s2["calls"], s2["failures"], s2["p50"], s2["max"]) == (1, 0, 0.5, 0.5)
    assert rows[("s2", "2026-01-02T03:04Z")]["calls"] == 1  # the world's call of s2
    assert rows[("loose", "2026-01-02T03:04Z")]["calls"] == 1  # its socket gone: by name
    assert len(first) == 4

    assert roll(world) == 4  # again: the same rows, not more
    assert kept(cli) == first
    add_calls(world, "s1", M, [1000.0], prefix="late")  # recorded late: counted on the next run
    roll(world)
    again = {(r["socket"], r["minute"]): r for r in kept(cli)}
    assert len(again) == 4
    assert (again[("s1", "2026-01-02T03:04Z")]["calls"],
            again[("s1", "2026-01-02T03:04Z")]["max"]) == (104, 1000.0)  # fmt: skip

    assert [r["socket"] for r in kept(cli, "--socket", "s2")] == ["s2", "s2"]
    assert kept(cli, "--since", "2026-01-02T03:05") == [again[("s2", "2026-01-02T03:05Z")]]
    assert cli.ok("ls", "metrics").stdout == ""  # by default the last day: nothing


def test_rows_older_than_the_retention_are_pruned(cli: Any, world: str) -> None:  # noqa: F811
    from shellflow.model.metrics import RETENTION_DAYS

    add_calls(world, "s1", M, [1.0])
    roll(world)
    assert len(kept(cli)) == 3
    roll(world, NOW + timedelta(days=RETENTION_DAYS) - timedelta(minutes=5))
    assert len(kept(cli)) == 3  # not yet
    roll(world, NOW + timedelta(days=RETENTION_DAYS))
    assert kept(cli) == []


def test_metrics_are_read_with_read_call_on_the_processors_held(
    cli: Any,
    world: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_calls(world, "s1", M, [1.0, 2.0])
    add_calls(world, "s2", M, [3.0])
    roll(world)
    as_alice(monkeypatch)
    refused = cli("ls", "metrics")
    assert refused.code == ExitCode.PERMISSION_DENIED
    assert refused.stderr.strip() == "flow: alice lacks the READ_CALL right on metrics"
    as_owner(monkeypatch)
    cli.ok("add", "privilege", "-u", "alice", "-n", "READ_CALL", "--processor", "p1")
    as_alice(monkeypatch)
    assert [r["socket"] for r in kept(cli)] == ["s1"]
    assert kept(cli, "--socket", "s2") == []
    as_owner(monkeypatch)
    cli.ok("add", "privilege", "-u", "alice", "-n", "READ_CALL")
    as_alice(monkeypatch)
    assert [r["socket"] for r in kept(cli)] == ["loose", "s1", "s2"]
    table = cli.ok("ls", "metrics", "--since", "2026-01-01").stdout.splitlines()
    assert [line.split("\t")[:3] for line in table] == [
        ["loose", "2026-01-02T03:04Z", "1"], ["s1", "2026-01-02T03:04Z", "3"],
        ["s2", "2026-01-02T03:04Z", "2"]]  # fmt: skip


def test_row_security_shows_a_role_the_metrics_of_its_processors_alone(
    flow: Any,
    pg_db: str,  # noqa: F811
) -> None:
    """PostgreSQL, connecting as the user's own role: READ_CALL on p1 reads p1's sockets'
    rows alone, as it reads their calls; held everywhere, every row."""
    import uuid

    from tests.conftest import PG_HOST, PG_PORT
    from tests.integration import test_row_security as rls
    from tests.integration.test_scoped_rights import NETWORK, store_calls

    url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{pg_db}"
    flow.ok("db", "init")
    flow.ok("config", "set", "repos.allow", "https://example.org/*")
    for args in NETWORK:
        if "user" not in args:
            flow.ok(*args)
    store_calls(url)
    roll(url)
    alice = f"alice-{uuid.uuid4().hex[:8]}"
    rls.add_user(flow, alice)
    assert rls.rows(pg_db, alice, "SELECT socket FROM metrics") == []
    flow.ok("add", "privilege", "-u", alice, "-n", "READ_CALL", "--processor", "p1")
    assert rls.rows(pg_db, alice, "SELECT socket FROM metrics") == ["s1"]
    flow.ok("add", "privilege", "-u", alice, "-n", "READ_CALL")
    assert rls.rows(pg_db, alice, "SELECT socket FROM metrics ORDER BY socket") == [
        "loose", "s1", "s2"]  # fmt: skip
    flow.ok("delete", "user", "-n", alice)


def test_the_lease_holder_rolls_up_once_a_minute(cli: Any, world: str) -> None:  # noqa: F811
    from shellflow.config import load_settings
    from shellflow.engine.fleet.rollup import rollup_if_leader
    from shellflow.engine.fleet.scheduler import Scheduler
    from shellflow.engine.transport.transports.stub import StubTransport

    add_calls(world, "s1", M, [1.0])
    first, other = (Scheduler(load_settings(), transport=StubTransport(), name=n) for n in "ab")
    t = NOW.timestamp()
    assert rollup_if_leader(first, t) == 3  # loose, s1, s2 in minute M
    assert rollup_if_leader(other, t + 1) == 0  # the lease is the first one's
    assert rollup_if_leader(first, t + 30) == 0  # not a minute since its last run
    assert rollup_if_leader(first, t + 60) == 3
    assert len(kept(cli)) == 3


def test_the_retention_is_a_setting_of_the_deployment(cli: Any, world: str) -> None:  # noqa: F811
    assert cli.ok("config", "get", "metrics.retention").stdout == "30d\n"
    for wrong in ("soon", "0d", "30m", "4000d"):
        refused = cli("config", "set", "metrics.retention", wrong)
        assert refused.code == ExitCode.USAGE, wrong
        assert refused.stderr.startswith("flow: metrics.retention: "), refused.stderr
    assert cli("config", "set", "metrics.retention", "1d", "2d").code == ExitCode.USAGE
    cli.ok("config", "set", "metrics.retention", "36h")
    assert cli.ok("config", "get", "metrics.retention").stdout == "36h\n"
    add_calls(world, "s1", M, [1.0])
    roll(world)
    roll(world, NOW + timedelta(hours=35))
    assert len(kept(cli)) == 3
    roll(world, NOW + timedelta(hours=36))
    assert kept(cli) == []
    cli.ok("config", "unset", "metrics.retention")
    assert cli.ok("config", "get", "metrics.retention").stdout == "30d\n"


def test_a_busy_socket_crowds_no_other_out_of_the_percentiles(
    cli: Any,
    world: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shellflow.engine.fleet import rollup

    monkeypatch.setattr(rollup, "SAMPLE", 20)  # the minute's ended calls outnumber it
    add_calls(world, "s1", M, [float(n) for n in range(1, 101)])
    add_calls(world, "s2", M, [7.0, 8.0, 9.0], prefix="x")
    roll(world)
    rows = {r["socket"]: r for r in kept(cli)}
    # s2: the world's call (no run time) and these three, all of them in its sample
    assert (rows["s2"]["p50"], rows["s2"]["p99"], rows["s2"]["max"]) == (7.0, 9.0, 9.0)
    s1 = rows["s1"]
    assert (s1["calls"], s1["max"]) == (101, 100.0)  # counted exactly
    assert s1["p50"] is not None and s1["p50"] <= s1["p90"] <= s1["p99"] <= s1["max"]
