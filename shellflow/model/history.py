"""Call history through the light read path: pages of calls, one call's story, call graphs.

Pages are cut by the database (LIMIT/OFFSET over the ``started`` index), never by loading
every call; the graph of a flow run is one query on the ``tracking`` index.

The footer's total is the costly part of a page: ``count(*)`` reads every matching row, and
with a million calls that alone takes longer than the page. So the matches are counted up
to :data:`COUNT_BOUND` (a few milliseconds on the indexes, whatever the table's size) and,
on PostgreSQL, a larger total is the planner's estimate (``EXPLAIN``, from the statistics
autovacuum keeps), shown as approximate. SQLite has no such estimate and counts exactly.
A page that ends before it is full tells the exact total, so the last page is always exact.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shellflow.errors import NotFound
from shellflow.model.dialects import sql_time
from shellflow.model.lifecycle import Event, lifecycle, merged
from shellflow.model.listing import Reader, _value
from shellflow.values import read_stored

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
# Written as literals, not parameters: SQLite uses the partial index ``ix_call_unfinished``
# only when the query repeats its WHERE term (shellflow.model.calls keeps the two equal).
UNFINISHED_SQL = "c.state IN (" + ", ".join(f"'{state}'" for state in UNFINISHED) + ")"
# Matches counted exactly up to here; beyond, PostgreSQL's planner estimates the total.
COUNT_BOUND = 10_000


def on_processors(processors: Collection[str]) -> tuple[str, list[Any]]:
    """The condition keeping the calls of these processors only (a call names its socket,
    the socket its processor; a call of no socket, or of a deleted one, is none of theirs)."""
    if not processors:
        return "1 = 0", []
    marks = ", ".join("?" for _ in processors)
    return (
        "c.socket_id IN (SELECT s.id FROM socket s JOIN processor p ON p.id = s.processor_id"
        f" WHERE p.name IN ({marks}))",
        sorted(processors),
    )


def processor_of_call(conn: Reader, call_id: str) -> str | None:
    """The processor whose socket made the call; None for a call of no (stored) socket."""
    found = conn.query(
        "SELECT p.name FROM call c JOIN socket s ON s.id = c.socket_id"
        " JOIN processor p ON p.id = s.processor_id WHERE c.id = ?",
        [call_id],
    )
    return str(found[0][0]) if found else None


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    page: int
    pages: int
    total: int
    exact: bool = True  # False: ``total`` and ``pages`` are PostgreSQL's estimate


def _select(columns: tuple[tuple[str, str, str], ...]) -> str:
    return "SELECT " + ", ".join(expr for _, expr, _ in columns) + " FROM call c"


def _row(columns: tuple[tuple[str, str, str], ...], record: tuple[Any, ...]) -> dict[str, Any]:
    return {key: _value(raw, kind) for (key, _, kind), raw in zip(columns, record, strict=True)}


def _moment(conn: Reader, moment: datetime) -> Any:
    """A UTC time as each database compares it (SQLite keeps naive UTC text)."""
    return sql_time(conn.dialect, moment)


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
    flow: str | None = None,
    processors: Collection[str] | None = None,
) -> Page:
    """One page of calls, newest first unless ``ascending`` (``flow``: of one flow run;
    ``processors``: of these processors only, None: of all)."""
    where: list[str] = []
    params: list[Any] = []
    if processors is not None:
        condition, names = on_processors(processors)
        where.append(condition)
        params += names
    if unfinished:
        where.append(UNFINISHED_SQL)
    if socket:
        where.append("c.name = ?")
        params.append(socket)
    if state:
        where.append("c.state = ?")
        params.append(state)
    if since:
        where.append("c.started >= ?")
        params.append(_moment(conn, since))
    if flow:
        where.append("c.tracking = ?")
        params.append(flow)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    total, exact = count_calls(conn, clause, params)
    offset = (page - 1) * rows
    records = _page(conn, clause, params, ascending, offset, rows)
    if not exact and 0 < len(records) < rows:
        total, exact = offset + len(records), True  # the last page: now the total is known
    elif not exact and records:  # at least this many: the estimate may fall short
        total = max(total, offset + len(records))
    pages = max(1, -(-total // rows))
    return Page([_row(CALL_COLUMNS, r) for r in records], page, pages, total, exact)


def _page(
    conn: Reader, clause: str, params: list[Any], ascending: bool, offset: int, rows: int
) -> list[tuple[Any, ...]]:
    """The rows of one page, calls not started yet (``pending``) counting as the newest.

    PostgreSQL and SQLite put NULLs at opposite ends of a sort, and asking either for the
    other order gives up the ``started`` index. So the two parts are read apart, each in
    index order: the calls not started (by creation) and the started ones (by start).
    """

    def also(where: str) -> str:
        return f"{clause}{' AND ' if clause else ' WHERE '}{where}"

    def part(where: str, order: str, skip: int, limit: int) -> list[tuple[Any, ...]]:
        sql = f"{_select(CALL_COLUMNS)}{also(where)} ORDER BY {order} LIMIT ? OFFSET ?"
        return conn.query(sql, [*params, limit, skip])

    way = "ASC" if ascending else "DESC"
    started = ("c.started IS NOT NULL", f"c.started {way}, c.id {way}")
    waiting = ("c.started IS NULL", f"c.created {way}, c.id {way}")
    first, second = (started, waiting) if ascending else (waiting, started)
    found = part(*first, offset, rows)
    if len(found) == rows:
        return found
    if found or offset == 0:
        ahead = offset + len(found)  # the first part ends on this page
    else:  # a page past the first part's end: how long was it?
        ahead = int(conn.query(f"SELECT count(*) FROM call c{also(first[0])}", params)[0][0])
    return found + part(*second, max(0, offset - ahead), rows - len(found))


def count_calls(conn: Reader, clause: str, params: list[Any]) -> tuple[int, bool]:
    """How many calls match ``clause``, and whether that is exact (see the module's note)."""
    if conn.dialect != "postgresql":
        return int(conn.query("SELECT count(*) FROM call c" + clause, params)[0][0]), True
    matches = "SELECT 1 FROM call c" + clause
    bounded = f"SELECT count(*) FROM ({matches} LIMIT {COUNT_BOUND + 1}) bounded"
    counted = int(conn.query(bounded, params)[0][0])
    if counted <= COUNT_BOUND:
        return counted, True
    return max(_rounded(_estimate(conn, matches, params)), counted), False


def _rounded(estimate: int) -> int:
    """Three significant digits: an estimate shown to the last row would claim too much."""
    return int(float(f"{estimate:.3g}"))


def _estimate(conn: Reader, sql: str, params: list[Any]) -> int:
    """The rows PostgreSQL's planner expects ``sql`` to return (no row is read)."""
    (plan,) = conn.query("EXPLAIN (FORMAT JSON) " + sql, params)[0]
    if isinstance(plan, str):  # json arrives parsed from psycopg2, but be lenient
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def get_call(conn: Reader, call_id: str, *, result: bool = False) -> dict[str, Any]:
    """One call with its events (and its result when asked), like the spec's listing 9."""
    columns = (*DETAIL_COLUMNS, ("result", "c.result", "str"), ("args", "c.args", "str"),
               ("sources", "c.sources", "str"), ("retry_of", "c.taskparent", "str"))  # fmt: skip
    found = conn.query(_select(columns) + " WHERE c.id = ?", [call_id])
    if not found:
        near = [
            r[0] for r in conn.query("SELECT id FROM call WHERE id LIKE ?", [call_id[:8] + "%"])
        ]
        raise NotFound("call", call_id, near)
    call = _row(columns, found[0])
    for key in ("result", "args"):
        call[key] = read_stored(call[key])  # text no parser takes: shown as it is
    sources = _sources(call.pop("sources"))
    if sources:  # several calls fed this one (a join's target, a funnel's final step)
        call["sources"] = sources
    if call["retry_of"] is None:  # the call this one retries ('flow task retry'), if any
        call.pop("retry_of")
    if not result:
        call.pop("result")
    stored = [
        Event(str(event_id), str(name), note, _time(created))
        for event_id, name, note, created in conn.query(
            "SELECT id, name, note, created FROM event WHERE call_id = ?", [call_id]
        )
    ]
    derived = lifecycle(
        call_id, call["name"], call["state"], _time(call["started"]), _time(call["finished"]),
        call["error"], stored=[event.name for event in stored],
    )  # fmt: skip
    call["events"] = [
        {"name": event.name, "note": event.note, "date": event.created.isoformat()}
        for event in merged(stored + derived)
    ]
    return call


def _time(raw: Any) -> Any:
    """A stored time as an aware UTC datetime (SQLite hands back naive text)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = datetime.fromisoformat(raw)
    return raw.replace(tzinfo=UTC) if raw.tzinfo is None else raw.astimezone(UTC)


def flow_calls(
    conn: Reader, flow: str, processors: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """Every call of a flow run, oldest first, each with the calls it received results from
    (``processors``: the calls of these processors only)."""
    columns = (*CALL_COLUMNS, ("sources", "c.sources", "str"))
    condition, names = on_processors(processors) if processors is not None else ("1 = 1", [])
    sql = _select(columns) + f" WHERE c.tracking = ? AND {condition} ORDER BY c.started, c.id"
    calls = [_row(columns, r) for r in conn.query(sql, [flow, *names])]
    for call in calls:
        call["sources"] = _sources(call["sources"])
    return calls


def _sources(raw: str | None) -> list[str]:
    try:
        found = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [item for item in found if isinstance(item, str)] if isinstance(found, list) else []


def tree(calls: list[dict[str, Any]], root: str | None = None) -> list[dict[str, Any]]:
    """Nest calls under the calls they received results from: the forward tree of ``root``,
    or every root's tree.

    A call fed by several (a join's target, a funnel's final step) appears under each of
    them. Each occurrence is a node of its own, and a call never appears inside itself, so
    the result is finite whatever the records say.
    """
    by_id = {c["id"]: c for c in calls}
    below: dict[str, list[str]] = {c["id"]: [] for c in calls}
    fed = set()
    for call in calls:
        ups = [call["parent"]] if call.get("parent") else []
        ups += [up for up in call.get("sources") or () if up not in ups]
        for up in ups:
            if up in below and up != call["id"]:
                below[up].append(call["id"])
                fed.add(call["id"])

    def node(call_id: str, path: frozenset[str]) -> dict[str, Any]:
        path = path | {call_id}
        children = [node(child, path) for child in below[call_id] if child not in path]
        return {**by_id[call_id], "children": children}

    if root is not None:
        return [node(root, frozenset())] if root in by_id else []
    roots = [node(c["id"], frozenset()) for c in calls if c["id"] not in fed]
    reached = set()

    def mark(n: dict[str, Any]) -> None:
        reached.add(n["id"])
        for child in n["children"]:
            mark(child)

    for n in roots:
        mark(n)
    # Calls only reachable from one another (records that say so): shown, not lost.
    for call in calls:
        if call["id"] not in reached:
            roots.append(node(call["id"], frozenset()))
            mark(roots[-1])
    return roots
