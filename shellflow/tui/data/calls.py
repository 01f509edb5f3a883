"""Pages of calls cut by keyset (the last row's sort value and id), never by loading them all.

``shellflow.model.history.list_calls`` pages with OFFSET and counts every match, which is
right for ``flow ls calls -p N`` but grows with the table; a dashboard that refreshes every
second and scrolls through any number of calls needs pages whose cost does not depend on
how deep they are. Row values ``(sort, id) < (?, ?)`` keep each page on the ``started``
index on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shellflow.model.dialects import seconds_between
from shellflow.model.listing import Reader, _value

PAGE_SIZE = 100
# shellflow.model.calls.CALL_STATES, kept here so this module never imports SQLAlchemy
# (tests/tui/test_data.py checks that they agree).
CALL_STATES = (
    "pending", "received", "running", "finished", "failed", "retry", "revoked", "dead",
)  # fmt: skip
SORTS = ("started", "socket", "state", "duration", "node")
COLUMNS = (
    ("id", "c.id"),
    ("name", "c.name"),
    ("state", "c.state"),
    ("started", "c.started"),
    ("finished", "c.finished"),
    ("hostname", "c.hostname"),
    ("worker", "c.worker"),
    ("flow", "c.tracking"),
)


def _sort_expression(sort: str, dialect: str) -> str:
    if sort == "started":
        return "c.started"
    if sort == "socket":
        return "c.name"
    if sort == "state":
        return "c.state"
    if sort == "node":
        return "COALESCE(c.hostname, '')"
    if sort == "duration":
        return f"COALESCE({seconds_between(dialect, 'c.started', 'c.finished')}, -1.0)"
    raise ValueError(f"unknown sort {sort!r}; expected one of {', '.join(SORTS)}")


@dataclass(frozen=True)
class CallFilter:
    """What ``/`` typed: ``state:failed``, ``socket:name`` and free words, all combined.

    A bare word that is a call state filters by state; any other word matches the socket,
    the call id, the node or the error text.
    """

    socket: str | None = None
    state: str | None = None
    words: tuple[str, ...] = ()
    # Not from ``/``: the processors whose calls the person looking may read (None: all).
    processors: frozenset[str] | None = None

    @classmethod
    def parse(cls, text: str) -> CallFilter:
        socket = state = None
        words: list[str] = []
        for word in text.split():
            key, sep, value = word.partition(":")
            if sep and key in ("socket", "s") and value:
                socket = value
            elif sep and key in ("state", "st") and value:
                state = value
            elif word in CALL_STATES:
                state = word
            else:
                words.append(word)
        return cls(socket, state, tuple(words))

    def __str__(self) -> str:
        parts = [f"socket:{self.socket}"] if self.socket else []
        parts += [f"state:{self.state}"] if self.state else []
        return " ".join([*parts, *self.words])

    def clause(self) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if self.processors is not None:
            from shellflow.model.history import on_processors

            condition, names = on_processors(self.processors)
            where.append(condition)
            params += names
        if self.socket:
            where.append("c.name = ?")
            params.append(self.socket)
        if self.state:
            where.append("c.state = ?")
            params.append(self.state)
        for word in self.words:
            like = "%" + word.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
            fields = ("c.name", "c.id", "c.hostname", "c.error")
            where.append("(" + " OR ".join(f"LOWER({f}) LIKE ? ESCAPE '!'" for f in fields) + ")")
            params += [like] * len(fields)
        return where, params


@dataclass(frozen=True)
class Cursor:
    """A position in the ordered calls: the sort value (as the database gives it) and id."""

    value: Any
    id: str


@dataclass(frozen=True)
class CallRow:
    id: str
    socket: str
    state: str
    started: datetime | None
    finished: datetime | None
    node: str | None
    worker: str | None
    flow: str | None
    cursor: Cursor = field(compare=False)

    @property
    def duration(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return (self.finished - self.started).total_seconds()


@dataclass(frozen=True)
class CallPage:
    rows: list[CallRow]
    has_before: bool
    has_after: bool

    @property
    def first(self) -> Cursor | None:
        return self.rows[0].cursor if self.rows else None

    @property
    def last(self) -> Cursor | None:
        return self.rows[-1].cursor if self.rows else None


def _moment(raw: Any) -> datetime | None:
    text = _value(raw, "time")
    return datetime.fromisoformat(text) if text else None


def fetch_page(
    conn: Reader,
    *,
    sort: str = "started",
    descending: bool = True,
    where: CallFilter | None = None,
    start: Cursor | None = None,
    after: Cursor | None = None,
    before: Cursor | None = None,
    size: int = PAGE_SIZE,
) -> CallPage:
    """One page: from ``start`` (inclusive: a refresh), ``after`` or ``before`` a row.

    With none of them, the first page (the newest calls when sorted by start time).
    """
    expr = _sort_expression(sort, conn.dialect)
    clauses, params = (where or CallFilter()).clause()
    if sort == "started":
        clauses.append("c.started IS NOT NULL")  # a call is listed once it has started
    backwards = before is not None
    order_desc = descending != backwards
    anchor = before or after or start
    if anchor is not None:
        op = "<" if order_desc else ">"
        if start is not None and anchor is start:
            op += "="
        clauses.append(f"({expr}, c.id) {op} (?, ?)")
        params += [anchor.value, anchor.id]
    direction = "DESC" if order_desc else "ASC"
    sql = (
        "SELECT "
        + ", ".join(e for _, e in COLUMNS)
        + f", {expr} FROM call c"
        + (" WHERE " + " AND ".join(clauses) if clauses else "")
        + f" ORDER BY {expr} {direction}, c.id {direction} LIMIT ?"
    )
    records = conn.query(sql, [*params, size + 1])
    more = len(records) > size
    records = records[:size]
    if backwards:
        records.reverse()
    rows = [
        CallRow(
            id=r[0],
            socket=r[1],
            state=r[2],
            started=_moment(r[3]),
            finished=_moment(r[4]),
            node=r[5],
            worker=r[6],
            flow=r[7],
            cursor=Cursor(r[8], r[0]),
        )
        for r in records
    ]
    if backwards:
        return CallPage(rows, has_before=more, has_after=True)
    return CallPage(rows, has_before=anchor is not None, has_after=more)


def count_calls(conn: Reader, where: CallFilter | None = None) -> tuple[int, bool]:
    """How many calls match, and whether exactly (history's bounded count: on PostgreSQL a
    large total is the planner's estimate, so counting never grows with the table)."""
    from shellflow.model import history

    clauses, params = (where or CallFilter()).clause()
    return history.count_calls(conn, " WHERE " + " AND ".join(clauses) if clauses else "", params)


def call_logs(conn: Reader, call_id: str, limit: int = 500) -> list[dict[str, Any]]:
    """The lines a call printed (stored by the worker in ``log``), oldest first."""
    records = conn.query(
        "SELECT created, source, text FROM log WHERE oid = ? ORDER BY created, id LIMIT ?",
        [call_id, limit],
    )
    return [
        {"date": _value(created, "time"), "source": source, "text": text}
        for created, source, text in records
    ]


def describe_args(args: Any) -> tuple[list[Any], dict[str, Any]]:
    """A stored call's ``{"args": [...], "kwargs": {...}}`` as (args, kwargs)."""
    if isinstance(args, dict) and ("args" in args or "kwargs" in args):
        return list(args.get("args") or []), dict(args.get("kwargs") or {})
    if args is None:
        return [], {}
    return [args], {}


def now() -> datetime:
    return datetime.now(UTC)


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=repr)
