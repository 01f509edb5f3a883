"""A real database filled with deterministic calls and a small network, and a dashboard on it.

Times and ids are fixed, and the dashboard's clock is pinned, so durations, heartbeat ages
and the snapshots never depend on when the tests run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
NOW = T0 + timedelta(minutes=5)
REPO = "https://github.com/radiantone/pyfi-processors"
MODULE = "pyfi.processors.sample"
DO_SOMETHING = "pyfi.processors.sample.do_something"
DO_THIS = "pyfi.processors.sample.do_this"


def call_id(n: int) -> str:
    return f"{n:08d}-0000-4000-8000-000000000000"


def store_network(cli: Any, url: str) -> None:
    """The spec's quick start (queue, processor, two sockets, a plug), a node and its agent."""
    for args in (
        ("add", "queue", "-n", "pyfi.queue1", "-t", "direct"),
        ("add", "processor", "-n", "proc1", "-g", REPO, "-m", MODULE, "-h", "localhost",
         "-c", "5"),
        ("add", "socket", "-n", DO_SOMETHING, "-q", "pyfi.queue1", "-pn", "proc1",
         "-t", "do_something"),
        ("add", "socket", "-n", DO_THIS, "-q", "pyfi.queue1", "-pn", "proc1", "-t", "do_this"),
        ("add", "plug", "-n", "plug1", "-q", "pyfi.queue1", "-s", DO_SOMETHING, "-t", DO_THIS,
         "-a", "data"),
        ("add", "node", "-n", "node1", "-c", "4"),
        ("add", "agent", "-n", "agent1", "--node", "node1", "-p", "8080"),
    ):  # fmt: skip
        cli.ok("-d", url, *args)
    from sqlalchemy import text

    from shellflow.model.db import session_scope

    with session_scope(url) as session:
        beat = (NOW - timedelta(seconds=12)).replace(tzinfo=None)
        session.execute(
            text("UPDATE node SET heartbeat = :b, cpuload = 0.5, hostname = 'host1'"), {"b": beat}
        )
        session.execute(text("UPDATE agent SET heartbeat = :b, hostname = 'host1'"), {"b": beat})
        session.execute(text("UPDATE processor SET status = 'running'"))


def store_calls(url: str, extra: int = 21) -> dict[str, str]:
    """A flow run root -> (a, b), a -> c, then ``extra`` unrelated calls, 3 still running."""
    from shellflow.model.calls import Call, Event, Log
    from shellflow.model.db import session_scope

    ids: dict[str, str] = {}
    with session_scope(url) as session:

        def call(key: str, n: int, **kw: Any) -> Call:
            row = Call(id=call_id(n), name=kw.pop("name", DO_SOMETHING),
                       state=kw.pop("state", "finished"), started=T0 + timedelta(seconds=n),
                       finished=T0 + timedelta(seconds=n, milliseconds=5 * n),
                       hostname="host1", worker="proc1@host1",
                       args=json.dumps({"args": [n], "kwargs": {}}), **kw)  # fmt: skip
            ids[key] = row.id
            session.add(row)
            return row

        root = call("root", 1, name=DO_THIS, result=json.dumps({"sum": 3}))
        root.tracking = root.id
        call("a", 2, tracking=root.id, parent=root.id)
        call("b", 3, tracking=root.id, parent=root.id, state="failed",
             error="ValueError: no", traceback="Traceback (most recent call last):\n"
             '  File "sample.py", line 3, in do_something\nValueError: no')  # fmt: skip
        call("c", 4, tracking=root.id, parent=ids["a"])
        for n in range(5, 5 + extra):
            call(f"x{n}", n, name=DO_THIS if n % 2 else DO_SOMETHING,
                 state="running" if n in (7, 8, 9) else "finished")  # fmt: skip
        session.flush()
        for i, name in enumerate(("received", "prerun", "postrun")):
            session.add(Event(name=name, note=f"{name} note", call_id=root.id,
                              created=T0 + timedelta(seconds=1, milliseconds=i)))  # fmt: skip
        printed = T0 + timedelta(seconds=1, milliseconds=2)
        session.add(Log(oid=root.id, discriminator="call", text="hello from do_this",
                        source="stdout", created=printed))  # fmt: skip
    return ids


@pytest.fixture
def sqlite_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from shellflow.model import schema

    url = f"sqlite:///{tmp_path / 'model.db'}"
    monkeypatch.setenv("SHELLFLOW_DB", url)
    schema.upgrade(url)
    yield url
    from shellflow.model.db import dispose_engines

    dispose_engines()


@pytest.fixture
def filled_db(cli: Any, sqlite_db: str) -> tuple[str, dict[str, str]]:
    store_network(cli, sqlite_db)
    return sqlite_db, store_calls(sqlite_db)


@pytest.fixture
def make_dashboard() -> Callable[..., Any]:
    """``make_dashboard(url, read_only=False)``: the dashboard with a pinned clock, no polling,
    and no broker questions (queue depths), so every screen is deterministic."""

    def make(url: str, read_only: bool = False, *, redis: str | None = None, **kw: Any) -> Any:
        from shellflow.config import load_settings
        from shellflow.tui.app import make_app

        flags = {"db": url}
        if redis:  # broker, results and live channels on the real Redis
            flags.update(broker=redis, backend=redis, pubsub=redis)
        settings = load_settings(flags)
        kw.setdefault("refresh_seconds", 0)
        kw.setdefault("depths", False)
        return make_app(settings, read_only, clock=lambda: NOW, **kw)

    return make


async def settle(pilot: Any) -> None:
    """Let every worker finish and its results reach the screen."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
