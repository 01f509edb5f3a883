"""The two database connections call records are written through, driver-level.

Records bypass SQLAlchemy (its per-statement overhead costs more CPU than a trivial call;
see ``shellflow.engine.records.recorder``): SQLite through sqlite3 with a fast write-lock
wait, and PostgreSQL through psycopg2 in asynchronous mode, whose every wait for the server
is bounded (:attr:`PostgreSQLConnection.TIMEOUT`), so a silent server is a connection error
that the record store retries rather than a hang.

Both offer the same methods (``shellflow.model.call_writes.DriverConnection``): the SQL
they run is ``shellflow.model.call_writes``'s, the one owner of the ``call`` table.
"""

from __future__ import annotations

import time
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
        self.cursor.execute(statement, params)

    def executemany(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        self.cursor.executemany(statement, rows)

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self.cursor.fetchall())

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

    def commit(self) -> None:
        self.cursor.execute("COMMIT")

    def rollback(self) -> None:
        self.cursor.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()


class PostgreSQLConnection:
    """A psycopg2 connection in asynchronous mode, used as a blocking one whose waits for
    the server are bounded by :attr:`TIMEOUT`."""

    TIMEOUT = 60.0  # seconds without any answer before the connection counts as lost

    def __init__(self, dsn: str) -> None:
        import psycopg2

        self.conn = psycopg2.connect(dsn, connect_timeout=5, async_=True)
        self.wait()
        self.cursor = self.conn.cursor()
        self.execute("SET synchronous_commit = off")

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

    def execute(self, statement: Any, params: Any = None) -> None:
        self.cursor.execute(statement, params)
        self.wait()

    def mogrify(self, statement: str, params: Any) -> bytes:
        return bytes(self.cursor.mogrify(statement, params))

    def begin(self) -> None:
        self.execute("BEGIN")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        self.execute("ROLLBACK")

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self.cursor.fetchall())

    def close(self) -> None:
        self.conn.close()
