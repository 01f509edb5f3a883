"""The two database connections call records are written through, driver-level.

Records bypass SQLAlchemy (its per-statement overhead costs more CPU than a trivial call;
see ``shellflow.engine.records.recorder``): SQLite through sqlite3 with a fast write-lock wait, and
PostgreSQL through psycopg2 in asynchronous mode so a statement can be handed to the server
before a call's result is stored and its answer awaited afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

SQLITE_LOCK_WAIT = 30.0  # seconds to wait for SQLite's write lock before one write fails


class SQLiteConnection:
    """A sqlite3 connection in autocommit mode; transactions are begun by hand."""

    def __init__(self, path: str) -> None:
        import sqlite3

        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None,
                                    check_same_thread=False)  # fmt: skip
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=0")  # the write lock is waited for in begin()
        self.cursor = self.conn.cursor()

    def execute(self, statement: Any, params: Any = ()) -> None:
        if isinstance(statement, SQLiteBatch):
            statement.run(self)
        else:
            self.cursor.execute(statement, params)

    def executemany(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        self.cursor.executemany(statement, rows)

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def begin(self) -> None:
        """Take SQLite's write lock, polling every 0.1 ms or so while another process holds it.

        SQLite's own busy handler sleeps a whole millisecond or more at the first conflict,
        many times a record write; worker processes writing side by side would queue on it.
        """
        import sqlite3

        delay, waited = 0.0001, 0.0
        while True:
            try:
                self.cursor.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or waited > SQLITE_LOCK_WAIT:
                    raise
            time.sleep(delay)
            waited += delay
            delay = min(delay * 1.5, 0.005)

    def close(self) -> None:
        self.conn.close()


class SQLiteBatch:
    """Buffered records to write to SQLite in one transaction."""

    def __init__(self, sql: dict[str, str], batches: Any) -> None:
        self.sql = sql
        self.batches = batches

    def run(self, conn: SQLiteConnection) -> None:
        conn.begin()
        try:
            for statement, values in self.batches:
                if values:
                    conn.executemany(self.sql[statement], values)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


class PostgreSQLConnection:
    """A psycopg2 connection in asynchronous mode, used as a blocking one, plus ``send``:
    hand a statement to the server now and await its answer later (``wait``)."""

    TIMEOUT = 60.0  # seconds without any answer before the connection counts as lost

    def __init__(self, dsn: str, prepare: Sequence[str] = ()) -> None:
        import psycopg2

        self.conn = psycopg2.connect(dsn, connect_timeout=5, async_=True)
        self.wait()
        self.cursor = self.conn.cursor()
        self.execute("SET synchronous_commit = off")
        for statement in prepare:  # the session's prepared statements, made again on reconnect
            self.execute(statement)

    def _io(self, state: int) -> None:
        import select

        import psycopg2
        import psycopg2.extensions as ext

        fd = self.conn.fileno()
        readable, writable = ([fd], []) if state == ext.POLL_READ else ([], [fd])
        if not any(select.select(readable, writable, [], self.TIMEOUT)[:2]):
            raise psycopg2.OperationalError("no answer from the database")

    def wait(self) -> None:
        import psycopg2.extensions as ext

        while True:
            state = self.conn.poll()
            if state == ext.POLL_OK:
                return
            self._io(state)

    def send(self, statement: bytes) -> None:
        import psycopg2.extensions as ext

        self.cursor.execute(statement)
        while True:  # until the whole statement is in the socket
            state = self.conn.poll()
            if state != ext.POLL_WRITE:
                return
            self._io(state)

    def execute(self, statement: Any, params: Any = None) -> None:
        self.cursor.execute(statement, params)
        self.wait()

    def mogrify(self, statement: str, params: Any) -> bytes:
        return bytes(self.cursor.mogrify(statement, params))

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def close(self) -> None:
        self.conn.close()
