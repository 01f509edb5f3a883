"""Committing call records: the worker's writer side of them.

Pool processes spool each call's records (``shellflow.engine.records.recorder``); the writer
thread of the worker's main process (``shellflow.engine.records.spool_writer``) hands the
lines it reads to a :class:`RecordStore`, which commits them in one transaction and then
publishes their live events. The store also runs the few writes that cannot wait for the
writer (counting a redelivery before the function runs again,
:meth:`RecordStore.count_redelivery`).

The SQL is ``shellflow.model.call_writes``'s (the one owner of the ``call`` table); this
module keeps what a long-lived writer needs around it: the buffer, a driver-level
connection (sqlite3, psycopg2: SQLAlchemy's per-statement overhead would cost more CPU than
the call itself), reconnecting while the database is away, and publishing what committed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from shellflow.engine.records.connections import PostgreSQLConnection, SQLiteConnection
from shellflow.engine.records.events import Stored
from shellflow.model import call_writes
from shellflow.model.call_writes import CALL_COLUMNS, ENDED, DriverConnection
from shellflow.model.urls import dialect_of, libpq_url, sqlite_path

FLUSH_PATIENCE = 30.0  # seconds of failed writes before RecordsUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


class RecordsUnavailable(Exception):
    """The model database refused record writes for longer than the patience given."""


@dataclass
class Pending:
    """Records buffered for one write: by the pool process that makes them (to spool) and by
    the writer that absorbs spooled lines (to commit)."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # call rows, by id
    # (state, when, id) of calls whose rows are not here (ended, or written elsewhere)
    updates: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    logs: list[tuple[Any, ...]] = field(default_factory=list)
    stored: list[Stored] = field(default_factory=list)  # the events and lines, to publish

    # rows met under an id already in ``rows`` but naming another task, socket or arguments:
    # not the same call (a message that reused its id), judged by the writer (RecordStore)
    contested: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rows or self.updates or self.events or self.logs or self.contested)

    def clear(self) -> None:
        self.rows.clear()
        self.contested.clear()
        self.updates.clear()
        self.events.clear()
        self.logs.clear()
        self.stored = []  # handed to the publisher as it was: a new list, not cleared

    def add_row(self, row: dict[str, Any]) -> None:
        """Buffer a call row; a call met twice keeps its ended row over a later ``running``
        one (two deliveries of one call may sit in two processes' spools, read in either
        order)."""
        old = self.rows.get(row["id"])
        if old is not None and _calls_of(old) != _calls_of(row):
            self.contested.append(row)
        elif old is None or old["state"] not in ENDED or row["state"] != "running":
            self.rows[row["id"]] = row

    def extend(self, later: Pending) -> None:
        """Add records buffered after these, keeping the order they were made in."""
        for row in [*later.rows.values(), *later.contested]:
            self.add_row(row)
        self.updates += later.updates
        self.events += later.events
        self.logs += later.logs
        self.stored += later.stored


class RecordStore:
    """Buffers spooled records and commits them; one per process that writes records.

    Two locks, neither held while a write waits to be retried: ``_lock`` guards the buffer
    (held for moments: a swap, an append), ``_io`` the connection (held for one try at the
    database). So while the database is away, :meth:`absorb`, :meth:`discard` and
    :meth:`close` answer at once instead of waiting out the retries' sleeps, and
    :meth:`close` ends them. Flushes run one at a time (a second waits for the first on a
    condition, holding nothing), so batches commit in the order they were absorbed.
    """

    def __init__(self, url: str, on_stored: Callable[[list[Stored]], None] | None = None) -> None:
        self.url = url
        self.on_stored = on_stored  # given each committed batch of events (live channels)
        self.dialect = dialect_of(url)
        self._conn: DriverConnection | None = None
        self._lock = threading.Lock()
        self._flushed = threading.Condition(self._lock)  # notified when a flush ends
        self._flushing = False
        self._io = threading.Lock()
        self._closed = threading.Event()  # set by close(): a retry's sleep ends early
        self._pending = Pending()  # absorbed, to commit at the next flush

    def absorb(self, *lines: bytes) -> None:
        """Buffer spooled record lines, for :meth:`flush` to commit (the writer's side)."""
        with self._lock:
            for line in lines:
                self._absorb(json.loads(line))

    def _absorb(self, record: dict[str, Any]) -> None:
        for values in record.get("r", ()):
            row: dict[str, Any] = dict.fromkeys(CALL_COLUMNS)  # lines spooled before a
            row.update(zip(CALL_COLUMNS, values, strict=False))  # column was added lack it
            self._pending.add_row(row)
        self._pending.updates += [tuple(u) for u in record.get("u", ())]
        self._pending.events += [tuple(e) for e in record.get("e", ())]
        self._pending.logs += [tuple(entry) for entry in record.get("l", ())]
        self._pending.stored += [
            Stored(i, c, sk, f, n, datetime.fromisoformat(w), d)
            for i, c, sk, f, n, w, d in record.get("s", ())
        ]

    def discard(self) -> None:
        """Drop what :meth:`absorb` buffered (the writer reads it again later)."""
        with self._lock:
            self._pending.clear()

    def flush(self, patience: float = FLUSH_PATIENCE) -> None:
        """Commit what is buffered, then publish its events.

        RecordsUnavailable if the database stays away for ``patience`` seconds (the buffer
        is kept, ahead of what was absorbed meanwhile); any other error means the database
        refused the rows themselves (the batch is dropped, since keeping it would fail
        every later batch as well). The buffer is taken out under the lock and committed
        without it.
        """
        with self._lock:
            while self._flushing:
                self._flushed.wait()
            if not self._pending:
                return
            batch, self._pending = self._pending, Pending()
            self._flushing = True
        try:
            self._attempt(lambda conn: self._write(conn, batch), patience, batch)
        except RecordsUnavailable:
            with self._lock:
                batch.extend(self._pending)
                self._pending = batch
            raise
        except Exception:
            log.exception("call records refused by the database; dropped")
            raise
        finally:
            with self._lock:
                self._flushing = False
                self._flushed.notify_all()
        self.published(batch.stored)

    def count_redelivery(
        self, row: tuple[Any, ...], marker: tuple[Any, ...], patience: float = FLUSH_PATIENCE
    ) -> tuple[tuple[Any, ...] | None, int]:
        """Count a redelivered call now (``shellflow.model.call_writes.count_redelivery``),
        retrying while the database is away; RecordsUnavailable after ``patience`` s."""
        return self._attempt(
            lambda conn: call_writes.count_redelivery(conn, self.dialect, row, marker), patience
        )

    def close(self) -> None:
        """Close the connection; a write waiting to be retried gives up at once."""
        self._closed.set()
        with self._io:
            self._disconnect()

    def published(self, events: list[Stored]) -> None:
        """Hand committed events to the live channels; never fails a call."""
        if events and self.on_stored is not None:
            try:
                self.on_stored(events)
            except Exception as exc:  # live viewers only
                log.warning("live events not published: %s", exc)

    def _write(self, conn: DriverConnection, batch: Pending) -> None:
        if batch.contested or batch.rows:
            _judge(batch, conn, self.dialect)
        rows = [call_writes.call_values(self.dialect, row) for row in batch.rows.values()]
        call_writes.write_records(conn, self.dialect, rows, batch.updates, batch.events,
                                  batch.logs)  # fmt: skip

    def _attempt(
        self, work: Callable[[DriverConnection], T], patience: float, batch: Pending | None = None
    ) -> T:
        """Run ``work(connection)``, reconnecting on connection errors for up to ``patience``
        seconds; the connection's lock is held for each try, never while sleeping."""
        deadline = time.monotonic() + patience
        delay = 0.05
        unlinked = False
        while True:
            try:
                with self._io:
                    return work(self._connection())
            except Exception as exc:
                if batch is not None and self._is_missing_reference(exc) and not unlinked:
                    # The socket or task was deleted while the worker ran: keep the call,
                    # unlinked (as ON DELETE SET NULL would have left it).
                    for key, row in list(batch.rows.items()):
                        batch.rows[key] = {**row, "socket_id": None, "task_id": None}
                    unlinked = True
                    continue
                if not self._is_connection_error(exc):
                    raise
                with self._io:
                    self._disconnect()
                if self._closed.is_set() or time.monotonic() + delay > deadline:
                    raise RecordsUnavailable(f"cannot write call records: {exc}") from exc
                log.warning("call records: %s; retrying in %.2f s", exc, delay)
                if self._closed.wait(delay):
                    raise RecordsUnavailable(f"cannot write call records: {exc}") from exc
                delay = min(delay * 2, 2.0)

    @staticmethod
    def _is_missing_reference(exc: Exception) -> bool:
        return "foreign key" in str(exc).lower()

    def _is_connection_error(self, exc: Exception) -> bool:
        if self.dialect == "postgresql":
            import psycopg2

            return isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError))
        import sqlite3

        return isinstance(exc, sqlite3.OperationalError)  # locked for too long, disk trouble

    def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                self._conn.close()
            self._conn = None

    def _connection(self) -> DriverConnection:
        if self._conn is None:
            if self.dialect == "postgresql":
                self._conn = PostgreSQLConnection(libpq_url(self.url))
            else:
                path = sqlite_path(self.url)
                self._conn = SQLiteConnection(str(path) if path else ":memory:")
        return self._conn


def _calls_of(row: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two rows under one id records of one call (two deliveries of it)."""
    return row["name"], row["socket_id"], row["args"]


def _judge(batch: Pending, conn: DriverConnection, dialect: str) -> None:
    """Keep in ``batch`` only the rows that may complete the call recorded under their id
    (``call_writes.refused_rows``); the refused calls' rows, events and printed lines are
    taken out (none is merged into that call, nor published), each refusal logged."""
    candidates = [*batch.rows.values(), *batch.contested]
    verdicts = call_writes.refused_rows(conn, dialect, candidates)
    kept: dict[str, dict[str, Any]] = {}
    refused: set[str] = set()
    for row in candidates:
        why = verdicts.get(id(row))
        if why is None and row["id"] in kept:  # two records of one id, neither recorded
            why = "another record of that id came first"
        if why is None:
            kept[row["id"]] = row
            continue
        refused.add(row["id"])
        if why:  # empty: the very row already recorded (a spool drained twice)
            log.warning(
                "call %s: record of %s from this worker refused, not merged: %s (a message "
                "reusing an existing call's id?)", row["id"], row.get("name"), why,
            )  # fmt: skip
    batch.rows, batch.contested = kept, []
    gone = refused - set(kept)  # a call whose every record here was refused
    if gone:
        batch.updates = [u for u in batch.updates if u[2] not in gone]
        batch.events = [e for e in batch.events if e[4] not in gone]
        batch.logs = [entry for entry in batch.logs if entry[2] not in gone]
        batch.stored = [event for event in batch.stored if event.call not in gone]
