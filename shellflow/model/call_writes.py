"""Every write of the ``call`` table, and of the ``event`` and ``log`` rows written with it.

Why one owner: several processes write one call's row, and they must agree. ``flow task
run --async`` records a call ``pending``; the worker that runs it completes the same row
(an upsert by id that keeps ``created``, the time it was sent); ``flow task cancel`` turns
a ``pending`` row ``revoked`` but must never touch one a worker has taken. The columns, the
conflict rules and the timestamp format (:func:`shellflow.model.dialects.sql_time`) are
therefore written down here once. SQL that only reads ``call`` stays with its readers
(``shellflow.model.history``, ``shellflow.engine.records.events``, ...).

Each writer keeps the connection it already has, and its speed:

- the light path (:class:`shellflow.model.listing.Reader`: no SQLAlchemy, for a cold CLI
  process): :func:`insert_pending` (and :func:`insert_pending_many`, a stream's calls in
  batches), :func:`record_cancelled` and :func:`record_revoked`;
- the scheduler's outbox (any :class:`Writing` connection, the scheduler's claim
  transaction included): :func:`insert_scheduled` records a due time's call ``pending``
  with the claim, :func:`mark_sent` and :func:`mark_unsent` say what the broker did with it;
- a worker's records, driver-level (``shellflow.engine.records.connections``, any
  :class:`DriverConnection`): :func:`write_records` commits a batch of spooled records in
  one transaction (one multi-row statement per table on PostgreSQL, ``executemany`` on
  SQLite: see docs/engine.md for what each costs) and :func:`count_redelivery` counts a
  redelivered message before its function runs again.

Every write is idempotent (upserts on the call's id, events and log lines keyed by their
own ids), so a batch sent again after a lost connection, or a spool drained twice, changes
nothing. No SQLAlchemy is imported here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, cast

from shellflow.model.dialects import placeholder, sql_time, times_of

if TYPE_CHECKING:
    from shellflow.model.listing import Reader

# The scheduler's outbox: events of a scheduled call (see insert_scheduled).
SCHEDULED, SENT, UNSENT = "scheduled", "sent", "unsent"
_SCHEDULE_IDS = uuid.UUID("6f1c2a52-3b8e-5d0c-9a77-5c4e0b1d2f16")  # namespace of scheduled ids
# New columns go last: a worker's spooled call rows are lists in this order.
CALL_COLUMNS = (
    "id", "created", "lastupdated", "name", "owner", "state", "socket_id", "task_id", "parent",
    "tracking", "celeryid", "args", "result", "error", "traceback", "hostname", "worker",
    "started", "finished", "sources",
)  # fmt: skip
_KEEP_ON_CONFLICT = ("id", "created")  # a pending row's ``created`` is when it was sent
EVENT_COLUMNS = ("id", "created", "name", "note", "call_id")
LOG_COLUMNS = ("id", "created", "oid", "discriminator", "text", "source", "public")
ENDED = frozenset(("finished", "failed", "revoked", "dead"))
_ENDED_SQL = "'dead','failed','finished','revoked'"
UNFINISHED_STATES = ("pending", "received", "running", "retry")  # as calls.UNFINISHED_WHERE
CANCELLED_NAME = "(cancelled before it started)"  # the name of a call cancelled unseen


class Writing(Protocol):
    """A connection that runs one ``?``-placeholder statement and says how many rows it
    changed: :class:`shellflow.model.listing.Reader`, or the scheduler's claim transaction."""

    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ...) -> int: ...


class DriverConnection(Protocol):
    """A database driver's connection as the worker's record store holds it."""

    def execute(self, statement: Any, params: Any = ...) -> None: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


class _Batching(DriverConnection, Protocol):
    """SQLite's: one statement run for many rows."""

    def executemany(self, statement: str, rows: list[tuple[Any, ...]]) -> None: ...


class _Mogrifying(DriverConnection, Protocol):
    """PostgreSQL's: a statement with its values bound, as the bytes sent to the server."""

    def mogrify(self, statement: str, params: Any) -> bytes: ...


@cache
def statements(dialect: str) -> dict[str, str]:
    """The record store's statements, in the driver's own parameter style."""
    mark = placeholder(dialect)

    def marks(n: int) -> str:
        return "(" + ",".join([mark] * n) + ")"

    # A socket (or task) deleted while its worker runs leaves its calls unlinked, as ON
    # DELETE SET NULL does for older calls, instead of failing their records.
    linked = {"socket_id": f"(SELECT id FROM socket WHERE id={mark})",
              "task_id": f"(SELECT id FROM task WHERE id={mark})"}  # fmt: skip
    call_values = "(" + ",".join(linked.get(c, mark) for c in CALL_COLUMNS) + ")"
    changes = ",".join(f"{c}=excluded.{c}" for c in CALL_COLUMNS if c not in _KEEP_ON_CONFLICT)
    # The database's own guard (refused_rows, run before, says why and logs): a row is
    # completed only by a record of the same call, never once it has ended.
    # One socket: the same socket id (a renamed socket keeps it) or, where either row has
    # lost it (the socket deleted), the same name.
    changes += (
        f" WHERE call.state NOT IN ({_ENDED_SQL}) AND CASE WHEN call.socket_id IS NULL"
        " OR excluded.socket_id IS NULL THEN call.name = excluded.name"
        " ELSE call.socket_id = excluded.socket_id END"
    )
    insert_call = f"INSERT INTO call ({','.join(CALL_COLUMNS)}) VALUES "
    return {
        "upsert": f"{insert_call}{call_values} ON CONFLICT (id) DO UPDATE SET {changes}",
        # Multi-row forms: head, one values group per row joined by commas, tail.
        "upsert_head": insert_call,
        "call_values": call_values,
        "upsert_tail": f" ON CONFLICT (id) DO UPDATE SET {changes}",
        "event_head": f"INSERT INTO event ({','.join(EVENT_COLUMNS)}) VALUES ",
        "event_values": marks(len(EVENT_COLUMNS)),
        "log_head": f"INSERT INTO log ({','.join(LOG_COLUMNS)}) VALUES ",
        "log_values": marks(len(LOG_COLUMNS)),
        "insert_new": f"{insert_call}{call_values} ON CONFLICT (id) DO NOTHING",
        "event": f"INSERT INTO event ({','.join(EVENT_COLUMNS)}) VALUES "
        f"{marks(len(EVENT_COLUMNS))} ON CONFLICT DO NOTHING",
        "log": f"INSERT INTO log ({','.join(LOG_COLUMNS)}) VALUES {marks(len(LOG_COLUMNS))}"
        " ON CONFLICT DO NOTHING",
        "state": f"UPDATE call SET state={mark}, lastupdated={mark} WHERE id={mark}"
        f" AND state NOT IN ({_ENDED_SQL})",
        "previous": f"SELECT state, result FROM call WHERE id={mark}",
        "redeliveries": f"SELECT count(*) FROM event WHERE call_id={mark} AND name='redelivered'",
    }


def call_values(dialect: str, row: dict[str, Any]) -> tuple[Any, ...]:
    """A call row's values in :data:`CALL_COLUMNS` order, times as the database stores them."""
    return times_of(dialect, tuple(row[c] for c in CALL_COLUMNS))


# -- the worker's records (driver-level) ----------------------------------------------------


def write_records(
    conn: DriverConnection, dialect: str, rows: Sequence[tuple[Any, ...]],
    updates: Sequence[tuple[Any, ...]], events: Sequence[tuple[Any, ...]],
    logs: Sequence[tuple[Any, ...]],
) -> None:  # fmt: skip
    """Commit a batch of records in one transaction.

    ``rows``: call rows (:func:`call_values`), upserted; ``updates``: ``(state, when, id)``
    of calls whose rows are not in the batch; ``events`` and ``logs``: rows in
    :data:`EVENT_COLUMNS` and :data:`LOG_COLUMNS` order. On PostgreSQL the batch is one
    simple query (one implicit transaction, one round trip), one multi-row statement per
    table: the server's cost per row falls to about a third of a statement per row
    (measured: 28 against 105 us of CPU per call row). On SQLite, ``executemany`` per table.
    """
    sql = statements(dialect)
    if dialect == "postgresql":
        pg = cast(_Mogrifying, conn)
        parts = []
        if rows:
            parts.append(sql["upsert_head"].encode() + b",".join(
                pg.mogrify(sql["call_values"], row) for row in rows
            ) + sql["upsert_tail"].encode())  # fmt: skip
        parts += [pg.mogrify(sql["state"], update) for update in updates]
        for table, values in (("event", events), ("log", logs)):
            if values:
                parts.append(sql[f"{table}_head"].encode() + b",".join(
                    pg.mogrify(sql[f"{table}_values"], value) for value in values
                ) + b" ON CONFLICT DO NOTHING")  # fmt: skip
        if parts:
            conn.execute(b";".join(parts))
        return
    sqlite = cast(_Batching, conn)
    conn.begin()
    try:
        for statement, values in (("upsert", rows), ("state", updates), ("event", events),
                                  ("log", logs)):  # fmt: skip
            if values:
                sqlite.executemany(sql[statement], list(values))
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def refused_rows(
    conn: DriverConnection, dialect: str, rows: Sequence[Mapping[str, Any]]
) -> dict[int, str]:
    """The call rows of a worker's batch that must not be merged into the row already
    recorded under their id, by ``id()`` of the row, each with why (the caller logs it and
    drops their records; several rows may share a call id).

    A call's row is created by its caller (``pending``) and completed by a worker of the
    socket it was sent to: a message that reuses an existing call's id for another task or
    socket, or with other arguments, is not that call; and an ended call (finished,
    failed, revoked, dead) is never reopened. A row already there and equal to the one
    written (a spool drained twice) is dropped silently. Arguments are compared as JSON
    values; a worker that could not decode its message's arguments (``null``) is taken at
    its word. One query per batch; the upsert's own ``WHERE`` guards the same rules
    against a record written between the two.
    """
    if not rows:
        return {}
    mark = placeholder(dialect)
    ids = list(dict.fromkeys(row["id"] for row in rows))
    conn.execute(
        f"SELECT id, state, name, socket_id, args FROM call WHERE id IN "
        f"({','.join([mark] * len(ids))})", tuple(ids),
    )  # fmt: skip
    found = {str(r[0]): r[1:] for r in conn.fetchall()}
    refused: dict[int, str] = {}
    for row in rows:
        old = found.get(row["id"])
        if old is None:
            continue
        state, name, socket_id, args = old
        same_args = _same_json(args, row["args"])
        if socket_id and row["socket_id"]:  # one socket: its id (kept when renamed)
            same_socket = str(socket_id) == str(row["socket_id"])
        else:  # the socket was deleted meanwhile: its name, as the row recorded it
            same_socket = name == row["name"]
        if state in ENDED:
            same = state == row["state"] and same_socket and same_args
            refused[id(row)] = "" if same else f"the call has ended ({state})"
        elif not same_socket:
            refused[id(row)] = f"the call was sent to another socket ({name!r})"
        elif not same_args and row["args"] not in (None, "null"):
            refused[id(row)] = "the call was sent with other arguments"
    return refused


def _same_json(recorded: str | None, written: str | None) -> bool:
    if recorded == written or recorded is None or written is None:
        return recorded == written
    import json

    try:
        return bool(json.loads(recorded) == json.loads(written))
    except ValueError:
        return False


def count_redelivery(
    conn: DriverConnection, dialect: str, row: tuple[Any, ...], marker: tuple[Any, ...]
) -> tuple[tuple[Any, ...] | None, int]:
    """Count a redelivered call, in one transaction, before its function runs again.

    Makes sure the call's row exists (``row``: :func:`call_values`; a row already there is
    kept), reads the state and result it had, counts its earlier ``redelivered`` events and
    adds ``marker`` (an event row). Returns ``(state, result)`` as it was (None: no row
    yet) and the number of earlier redeliveries.
    """
    sql = statements(dialect)
    call_id = row[0]
    conn.begin()
    try:
        conn.execute(sql["previous"], (call_id,))
        previous = conn.fetchone()
        conn.execute(sql["insert_new"], row)
        conn.execute(sql["redeliveries"], (call_id,))
        before = int(conn.fetchone()[0])
        conn.execute(sql["event"], marker)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return (tuple(previous) if previous else None), before


# -- a cold command's writes (the light path) -----------------------------------------------


@dataclass(frozen=True)
class Pending:
    """A call just sent, as its ``pending`` row records it (``args``: its JSON text)."""

    call_id: str
    name: str
    socket_id: str | None
    task_id: str | None
    flow: str
    parent: str | None
    args: str
    sent: datetime


PENDING_COLUMNS = ("id", "created", "lastupdated", "name", "state", "socket_id", "task_id",
                   "parent", "tracking", "celeryid", "args")  # fmt: skip
PENDING_PER_STATEMENT = 500  # rows per INSERT: 11 parameters each, far below SQLite's limit


def insert_pending(
    conn: Writing, *, call_id: str, name: str, socket_id: str | None, task_id: str | None,
    flow: str, parent: str | None, args: str, sent: datetime,
) -> bool:  # fmt: skip
    """Write the ``pending`` row of a call just sent; False if a worker's record came first."""
    pending = Pending(call_id, name, socket_id, task_id, flow, parent, args, sent)
    return insert_pending_many(conn, [pending]) == 1


def insert_pending_many(conn: Writing, calls: Sequence[Pending]) -> int:
    """Write the ``pending`` rows of calls just sent; how many were new.

    ``started`` stays empty (no worker has started them: see ``shellflow.model.lifecycle``)
    and ``created`` is when each was sent, which the worker's upsert keeps. ``ON CONFLICT DO
    NOTHING`` keeps a worker's record (or a cancellation) should one have come first. A
    socket or task deleted meanwhile leaves the row unlinked, as the worker's records do.
    Many rows go in one statement per :data:`PENDING_PER_STATEMENT` (a stream records its
    calls in batches); run them in a :meth:`Reader.transaction` to commit them at once.
    """
    linked = {"socket_id": "(SELECT id FROM socket WHERE id=?)",
              "task_id": "(SELECT id FROM task WHERE id=?)"}  # fmt: skip
    group = "(" + ",".join(linked.get(c, "?") for c in PENDING_COLUMNS) + ")"
    head = f"INSERT INTO call ({', '.join(PENDING_COLUMNS)}) VALUES "
    written = 0
    for start in range(0, len(calls), PENDING_PER_STATEMENT):
        chunk = calls[start : start + PENDING_PER_STATEMENT]
        params: list[Any] = []
        for c in chunk:
            when = sql_time(conn.dialect, c.sent)
            params += [c.call_id, when, when, c.name, "pending", c.socket_id, c.task_id,
                       c.parent, c.flow, c.call_id, c.args]  # fmt: skip
        sql = head + ",".join([group] * len(chunk)) + " ON CONFLICT (id) DO NOTHING"
        written += conn.execute(sql, params)
    return written


def record_cancelled(
    conn: Reader, call_ids: Sequence[str], note: str, now: datetime | None = None
) -> list[str]:
    """Record calls as cancelled before they started; the ids now recorded so, in order.

    A call with no row gets a ``revoked`` one; a ``pending`` row (sent with ``--async``,
    not taken yet) becomes ``revoked`` with no start time (so workers that start later
    discard it). A row a worker wrote (started, or ended) is kept and its id left out. Each
    cancelled call gets a ``revoked`` event carrying ``note``. One transaction: a worker
    taking a call meanwhile either sees it revoked or keeps it.
    """
    reasons = {call_id: note for call_id in call_ids}  # each once, in the order given
    return _revoke(conn, reasons, now, ("pending",), unstart=True)


def record_revoked(
    conn: Reader, reasons: Mapping[str, str], now: datetime | None = None,
    about: Mapping[str, tuple[str | None, str | None]] | None = None,
) -> list[str]:  # fmt: skip
    """Record calls ``revoked`` whatever unfinished state they had; the ids now so, in order.

    For a change of the network forced under running work (``shellflow.model.busy``):
    ``reasons`` maps each call's id to why (``socket s1 deleted``), kept in a ``revoked``
    event. A call with no row yet (its message taken from a queue before any worker saw
    it) gets a ``revoked`` one, named and in the flow run ``about`` gives for it (its
    socket and flow, read from its message) so ``flow ls calls --flow ID`` finds it; a row
    that has ended is kept and its id left out. A running call keeps its start time. One
    transaction.
    """
    return _revoke(conn, reasons, now, UNFINISHED_STATES, about=about)


def _revoke(
    conn: Reader, reasons: Mapping[str, str], now: datetime | None, states: Sequence[str],
    about: Mapping[str, tuple[str | None, str | None]] | None = None, unstart: bool = False,
) -> list[str]:  # fmt: skip
    """Revoke each call whose row is in one of ``states`` (``unstart``: clearing its start
    time) or that has no row yet (one is written, named and in the flow ``about`` gives),
    with a ``revoked`` event carrying its reason; the ids revoked, in order."""
    when = sql_time(conn.dialect, now or datetime.now(UTC))
    placed = ", ".join(f"'{state}'" for state in states)
    cleared = " started = NULL," if unstart else ""
    revoked: list[str] = []
    with conn.transaction():
        for call_id, note in reasons.items():
            name, flow = (about or {}).get(call_id, (None, None))
            took = conn.execute(
                f"UPDATE call SET state = 'revoked',{cleared} finished = ?, lastupdated = ?"
                f" WHERE id = ? AND state IN ({placed})",
                [when, when, call_id],
            ) or conn.execute(
                "INSERT INTO call (id, name, state, celeryid, tracking, created, lastupdated,"
                " finished) VALUES (?, ?, 'revoked', ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                [call_id, name or CANCELLED_NAME, call_id, flow or call_id, when, when, when],
            )
            if took == 1:
                conn.execute(
                    "INSERT INTO event (id, created, name, note, call_id)"
                    " VALUES (?, ?, 'revoked', ?, ?)",
                    [str(uuid.uuid4()), when, note, call_id],
                )
                revoked.append(call_id)
    return revoked


def link_retry(conn: Reader, old: str, new: str, now: datetime | None = None) -> None:
    """Link call ``new`` to the call it retries, ``old`` (``flow task retry``), both ways.

    ``new``'s ``taskparent`` names ``old`` (its ``pending`` row was written as it was sent;
    no worker upsert touches the column, so the link stays whoever writes the row next), and
    ``old`` gets a ``retried`` event naming ``new``. One transaction.
    """
    when = sql_time(conn.dialect, now or datetime.now(UTC))
    with conn.transaction():
        conn.execute("UPDATE call SET taskparent = ? WHERE id = ?", [old, new])
        conn.execute(
            "INSERT INTO event (id, created, name, note, call_id) VALUES (?, ?, 'retried', ?, ?)",
            [str(uuid.uuid4()), when, f"Retried as call {new}", old],
        )


# -- the scheduler's outbox -----------------------------------------------------------------


def scheduled_call_id(socket_id: str, due: float) -> str:
    """The call id of one socket's firing at one due time (epoch seconds): the same wherever
    and however often it is computed, so a due time claimed twice still makes one call."""
    return str(uuid.uuid5(_SCHEDULE_IDS, f"{socket_id}@{due!r}"))


def _event_id(call_id: str, name: str) -> str:
    """A scheduled call's outbox event id: one per call and name (written once)."""
    return str(uuid.uuid5(_SCHEDULE_IDS, f"{call_id}/{name}"))


def _outbox_event(conn: Writing, call_id: str, name: str, note: str, when: datetime) -> int:
    return conn.execute(
        "INSERT INTO event (id, created, name, note, call_id) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        [_event_id(call_id, name), sql_time(conn.dialect, when), name, note[:2000], call_id],
    )


def insert_scheduled(
    conn: Writing, *, call_id: str, name: str, socket_id: str, task_id: str | None,
    due: datetime, now: datetime,
) -> bool:  # fmt: skip
    """Record a due time's call ``pending``, with a ``scheduled`` event, before it is sent.

    Run in the transaction that claims the due time, so a claimed due time always has its
    call: the scheduler then sends it, and sends it again until the broker takes it (its
    ``sent`` event, :func:`mark_sent`). False if the call was recorded already.
    """
    if not insert_pending(
        conn, call_id=call_id, name=name, socket_id=socket_id, task_id=task_id, flow=call_id,
        parent=None, args='{"args": [], "kwargs": {}}', sent=now,
    ):  # fmt: skip
        return False
    _outbox_event(conn, call_id, SCHEDULED, f"due {due:%Y-%m-%dT%H:%M:%S}Z", now)
    return True


def mark_sent(conn: Writing, call_id: str, note: str, now: datetime | None = None) -> None:
    """The broker took the scheduled call (confirmed): it is not sent again."""
    _outbox_event(conn, call_id, SENT, note, now or datetime.now(UTC))


def mark_unsent(conn: Writing, call_id: str, reason: str, now: datetime | None = None) -> None:
    """The scheduled call's first send failed (the first failure's reason is kept): the
    scheduler holding the lease sends it again until the broker takes it."""
    _outbox_event(conn, call_id, UNSENT, reason, now or datetime.now(UTC))
