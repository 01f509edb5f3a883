"""Call history through the light read path: pages of calls, one call's story, call graphs.

Pages are cut by the database (LIMIT/OFFSET over the ``started`` index), never by loading
every call; the graph of a flow run is one query on the ``tracking`` index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shellflow.errors import NotFound
from shellflow.model.listing import Reader, _value

CALL_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("id", "c.id", "str"),
    ("name", "c.name", "str"),
    ("state", "c.state", "str"),
    ("started", "c.started", "time"),
    ("finished", "c.finished", "time"),
    ("hostname", "c.hostname", "str"),
    ("worker", "c.worker", "str"),
    ("parent", "c.parent", "str"),
    ("flow", "c.tracking", "str"),
    ("owner", "c.owner", "str"),
    ("lastupdated", "c.lastupdated", "time"),
)
DETAIL_COLUMNS = (*CALL_COLUMNS, ("error", "c.error", "str"), ("traceback", "c.traceback", "str"))
UNFINISHED = ("pending", "received", "running", "retry")


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    page: int
    pages: int
    total: int


def _select(columns: tuple[tuple[str, str, str], ...]) -> str:
    return "SELECT " + ", ".join(expr for _, expr, _ in columns) + " FROM call c"


def _row(columns: tuple[tuple[str, str, str], ...], record: tuple[Any, ...]) -> dict[str, Any]:
    return {key: _value(raw, kind) for (key, _, kind), raw in zip(columns, record, strict=True)}


def _moment(conn: Reader, moment: datetime) -> Any:
    """A UTC time as each database compares it (SQLite keeps naive UTC text)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if conn.dialect == "sqlite":
        return moment.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment


def list_calls(
    conn: Reader,
    *,
    page: int = 1,
    rows: int = 10,
    unfinished: bool = False,
    ascending: bool = False,
    socket: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
) -> Page:
    """One page of calls, newest first unless ``ascending``."""
    where: list[str] = []
    params: list[Any] = []
    if unfinished:
        where.append("c.state IN (" + ", ".join("?" for _ in UNFINISHED) + ")")
        params += UNFINISHED
    if socket:
        where.append("c.name = ?")
        params.append(socket)
    if state:
        where.append("c.state = ?")
        params.append(state)
    if since:
        where.append("c.started >= ?")
        params.append(_moment(conn, since))
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    total = int(conn.query("SELECT count(*) FROM call c" + clause, params)[0][0])
    pages = max(1, -(-total // rows))
    order = "ASC" if ascending else "DESC"
    sql = (
        f"{_select(CALL_COLUMNS)}{clause} ORDER BY c.started {order}, c.id {order} LIMIT ? OFFSET ?"
    )
    records = conn.query(sql, [*params, rows, (page - 1) * rows])
    return Page([_row(CALL_COLUMNS, r) for r in records], page, pages, total)


def get_call(conn: Reader, call_id: str, *, result: bool = False) -> dict[str, Any]:
    """One call with its events (and its result when asked), like the spec's listing 9."""
    columns = (*DETAIL_COLUMNS, ("result", "c.result", "str"), ("args", "c.args", "str"))
    found = conn.query(_select(columns) + " WHERE c.id = ?", [call_id])
    if not found:
        near = [
            r[0] for r in conn.query("SELECT id FROM call WHERE id LIKE ?", [call_id[:8] + "%"])
        ]
        raise NotFound("call", call_id, near)
    call = _row(columns, found[0])
    for key in ("result", "args"):
        call[key] = json.loads(call[key]) if call[key] is not None else None
    if not result:
        call.pop("result")
    events = conn.query(
        "SELECT name, note, created FROM event WHERE call_id = ? ORDER BY created, id", [call_id]
    )
    call["events"] = [
        {"name": name, "note": note, "date": _value(created, "time")}
        for name, note, created in events
    ]
    return call


def flow_calls(conn: Reader, flow: str) -> list[dict[str, Any]]:
    """Every call of a flow run, oldest first."""
    sql = _select(CALL_COLUMNS) + " WHERE c.tracking = ? ORDER BY c.started, c.id"
    return [_row(CALL_COLUMNS, r) for r in conn.query(sql, [flow])]


def tree(calls: list[dict[str, Any]], root: str | None = None) -> list[dict[str, Any]]:
    """Nest calls under their parents: the forward tree of ``root``, or every root's tree."""
    by_id = {c["id"]: {**c, "children": []} for c in calls}
    roots = []
    for call in by_id.values():
        parent = by_id.get(call["parent"]) if call["parent"] else None
        if parent is not None:
            parent["children"].append(call)
        else:
            roots.append(call)
    if root is not None:
        return [by_id[root]] if root in by_id else []
    return roots
