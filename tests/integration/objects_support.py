"""Helpers shared by the object-command tests: the spec's quick start, JSON listings and
direct reads of the database (through SQLAlchemy, never through the code under test)."""

from __future__ import annotations

import json
from typing import Any

REPO = "https://github.com/radiantone/pyfi-processors"
MODULE = "pyfi.processors.sample"
DO_SOMETHING = "pyfi.processors.sample.do_something"
DO_THIS = "pyfi.processors.sample.do_this"


def quickstart(cli: Any) -> None:
    """The spec's section 5.5, line for line."""
    cli.ok("add", "queue", "-n", "pyfi.queue1", "-t", "direct")
    cli.ok("add", "processor", "-n", "proc1", "-g", REPO, "-m", MODULE, "-h", "localhost",
           "-c", "5")  # fmt: skip
    cli.ok("add", "socket", "-n", DO_SOMETHING, "-q", "pyfi.queue1", "-pn", "proc1",
           "-t", "do_something")  # fmt: skip
    cli.ok("add", "socket", "-n", DO_THIS, "-q", "pyfi.queue1", "-pn", "proc1", "-t", "do_this")


def wired(cli: Any) -> None:
    """The quick start plus a plug from do_something into do_this's argument ``data``."""
    quickstart(cli)
    cli.ok("add", "plug", "-n", "plug1", "-q", "pyfi.queue1", "-s", DO_SOMETHING,
           "-t", DO_THIS, "-a", "data")  # fmt: skip


def ls_json(cli: Any, kind: str) -> list[dict[str, Any]]:
    """``flow ls KIND --json``: every line must be one JSON object."""
    lines = cli.ok("ls", kind, "--json").stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert all(isinstance(row, dict) for row in rows), lines
    return rows


def show(cli: Any, kind: str, name: str) -> dict[str, Any]:
    """``flow ls KIND -n NAME --json``: exactly one JSON object."""
    out = cli.ok("ls", kind, "-n", name, "--json").stdout
    assert len(out.strip().splitlines()) == 1, out
    obj = json.loads(out)
    assert isinstance(obj, dict)
    return obj


def names(cli: Any, kind: str) -> list[str]:
    return [row["name"] for row in ls_json(cli, kind)]


def sql(url: str, statement: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows of a raw query, read independently of shellflow's own read path."""
    from sqlalchemy import create_engine, text

    from shellflow.model.urls import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(statement), params)]
    finally:
        engine.dispose()


def count(url: str, table: str) -> int:
    return int(sql(url, f"SELECT COUNT(*) FROM {table}")[0][0])
