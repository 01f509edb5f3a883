"""The light read path (``shellflow.model.views`` + ``listing``) against the ORM's tables.

Listings bypass SQLAlchemy for speed, so nothing but these tests keeps their hand-written
SQL in step with the models: every view and related query runs on both databases with every
kind of object present, and every column they name must exist in the ORM's metadata.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest
from objects_support import DO_SOMETHING, DO_THIS, wired

from shellflow.model.views import KINDS, VIEWS


@pytest.fixture
def populated(cli: Any, initialised_db: str) -> str:
    """At least one object of every kind, with every relation a view shows."""
    wired(cli)
    for args in (
        ("add", "network", "-n", "net1"),
        ("add", "queue", "-n", "q2", "--network", "net1", "--message-ttl", "100"),
        ("add", "scheduler", "-n", "sch1", "--network", "net1", "-i", "30"),
        ("add", "node", "-n", "node1", "--scheduler", "sch1", "--network", "net1", "-c", "4"),
        ("add", "agent", "-n", "agent1", "--node", "node1", "-p", "8080"),
        ("add", "deployment", "-n", "dep1", "-pn", "proc1", "-h", "host1", "-c", "2"),
        ("add", "argument", "-n", "extra", "-s", DO_SOMETHING, "-k", "1"),
        ("add", "user", "-n", "joe", "-e", "joe@xyz", "-p", "pw"),
        ("add", "role", "-n", "developer"),
        ("update", "user", "-n", "joe", "--add-role", "developer"),
        ("add", "privilege", "-u", "joe", "-n", "ADD_PROCESSOR"),
        ("add", "privilege", "-r", "developer", "-n", "LS_PROCESSORS"),
        ("update", "socket", "-n", DO_THIS, "-i", "60"),
    ):
        cli.ok(*args)
    _skipped_schedule(initialised_db, DO_SOMETHING)  # a line in the socket's log
    return initialised_db


def _skipped_schedule(url: str, socket: str) -> None:
    """A schedule that never fires, stored past the checks: the scheduler logs its skip."""
    from sqlalchemy import update

    from shellflow.config import load_settings
    from shellflow.engine.fleet.scheduler import Scheduler
    from shellflow.engine.transport.transports.stub import StubTransport
    from shellflow.model.db import session_scope
    from shellflow.model.network import Socket

    with session_scope(url) as session:
        session.execute(update(Socket).where(Socket.name == socket).values(cron="0 0 31 2 *"))
    Scheduler(load_settings(), transport=StubTransport()).tick()


def test_every_kind_has_a_view() -> None:
    from shellflow.commands.kinds import KIND_OPTIONS

    assert set(KINDS) == set(KIND_OPTIONS)


def test_every_view_and_related_query_runs(populated: str) -> None:
    from shellflow.model.listing import reader

    related_rows: dict[tuple[str, str], int] = {}
    with reader(populated) as conn:
        for kind, view in VIEWS.items():
            records = conn.query(view.select())
            assert records, f"no {kind} rows"
            assert all(len(r) == 1 + len(view.columns) for r in records), kind
            name = records[0][1]
            assert conn.query(view.select("o.name = ?"), [name]), kind
            for record in records:
                for related in view.related:
                    rows = conn.query(related.sql, [record[0]] * related.sql.count("?"))
                    assert all(len(r) == len(related.columns) for r in rows), (kind, related.key)
                    key = (kind, related.key)
                    related_rows[key] = related_rows.get(key, 0) + len(rows)
    empty = [key for key, n in related_rows.items() if n == 0]
    assert not empty, f"related lists never filled: {empty}"


def test_listings_show_what_the_orm_stored(populated: str) -> None:
    """Same names, and the same values for a few typed columns, through both paths."""
    from sqlalchemy import select

    from shellflow.model.db import session_scope
    from shellflow.model.listing import list_objects, reader
    from shellflow.model.store import MODELS

    with reader(populated) as conn:
        listed = {kind: list_objects(conn, kind) for kind in KINDS}
    with session_scope(populated) as session:
        for kind in ("queue", "processor", "socket", "plug", "node", "agent", "scheduler",
                     "deployment", "network", "user", "role"):  # fmt: skip
            model: Any = MODELS[kind]
            stored = sorted(session.scalars(select(model.name)))
            assert sorted(r["name"] for r in listed[kind]) == stored, kind
        queue = session.scalar(select(MODELS["queue"]).where(MODELS["queue"].name == "q2"))
        shown = next(r for r in listed["queue"] if r["name"] == "q2")
        assert shown["durable"] is True and queue.durable is True
        assert shown["message_ttl"] == queue.message_ttl == 100
        assert shown["created"] == queue.created.isoformat()
        assert shown["created"].endswith("+00:00")
    node = next(r for r in listed["node"] if r["name"] == "node1")
    assert (node["cpus"], node["cpuload"], node["heartbeat"]) == (4, 0.0, None)


def _tables_and_aliases(view: Any) -> dict[str, str]:
    aliases = {"o": view.table}
    for table, alias in re.findall(r"JOIN (\w+) (\w+) ON", view.joins):
        aliases[alias] = table
    return aliases


def test_view_columns_exist_in_the_orm_metadata() -> None:
    import shellflow.model.tables  # noqa: F401
    from shellflow.model.base import Base

    tables = Base.metadata.tables
    for kind, view in VIEWS.items():
        aliases = _tables_and_aliases(view)
        exprs = [expr for _, expr, _ in view.columns] + [view.order]
        for expr in exprs:
            for alias, column in re.findall(r'\b(\w+)\."?(\w+)"?', expr):
                table = aliases[alias]
                if table.startswith("("):
                    continue  # a sub-select: checked by running it
                assert column in tables[table].columns, f"{kind}: {table}.{column}"
        for related in view.related:
            for table in re.findall(r"(?:FROM|JOIN) (\w+)", related.sql):
                assert table in tables, f"{kind}/{related.key}: {table}"


_PROBE = """
import json, sys
from shellflow.commands import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sqlalchemy", "alembic", "argon2"})
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ("ls", "queues"),
        ("ls", "socket", "-n", DO_THIS, "--json"),
        ("ls", "privileges"),
        ("ls", "users", "--json"),
        ("ls", "rights"),
    ],
    ids=lambda a: " ".join(a[:3]),
)
def test_listing_never_imports_sqlalchemy(populated: str, args: tuple[str, ...]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=60
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, proc.stderr
    assert proc.stdout.strip()  # it did list something
