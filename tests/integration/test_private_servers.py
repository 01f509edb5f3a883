"""The private servers the fault tests kill and restart: each starts, answers, comes back on
the same port after a stop or a kill, and leaves no process behind."""

from __future__ import annotations

import os

import pytest

from tests.private_postgres import private_postgres
from tests.private_redis import private_redis
from tests.waiting import poll


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_private_redis_restarts_on_its_port_and_keeps_its_data() -> None:
    import redis

    with private_redis() as server:
        client = redis.Redis.from_url(server.url)
        client.set("kept", "yes")
        port, first = server.port, server.pid
        server.stop()  # SIGTERM: the append-only file is written
        assert not server.answers()
        server.start()
        assert server.port == port and server.pid != first
        assert client.get("kept") == b"yes"  # the same folder, its data kept
        server.kill()
        assert not server.answers()
        server.start()
        assert redis.Redis.from_url(server.url).ping()
        last = server.pid
    assert last is not None and _gone(last)
    assert not server.folder.exists()


@pytest.mark.services
def test_private_postgres_runs_as_its_own_user_and_restarts_on_its_port() -> None:
    import psycopg2

    with private_postgres() as server:

        def query(sql: str) -> object:
            with psycopg2.connect(server.url) as conn, conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchone() if cur.description else None

        assert query("SELECT current_user") == ("postgres",)
        owner = os.stat(server.data).st_uid
        assert owner == server.user.pw_uid != 0  # initdb refuses root
        query("CREATE TABLE kept AS SELECT 1 AS one")
        port, first = server.port, server.pid
        server.stop()
        assert not server.answers()
        server.start()
        assert server.port == port and server.pid != first
        assert query("SELECT one FROM kept") == (1,)
        server.kill()  # the postmaster and its backends, as a crash
        assert not server.answers()
        server.start()  # recovers from its write-ahead log
        assert query("SELECT one FROM kept") == (1,)
        last = server.pid
    assert last is not None
    poll(lambda: _group_gone(last), 30, "the private PostgreSQL's processes to end")
    assert not server.folder.exists()
