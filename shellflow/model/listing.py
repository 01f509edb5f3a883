"""Read the network's objects straight through the database driver (sqlite3 or psycopg2).

This is the path of ``flow ls`` and of shell completion: it never imports SQLAlchemy, so a
listing starts in a fraction of the time an ORM query would need. Writes of the network's
objects go through the ORM (``shellflow.model.store``); those of calls through
``shellflow.model.call_writes``, which a cold command (``flow task run --async``, ``flow task
cancel``) runs on a :func:`writer`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from shellflow.errors import NotFound, ServiceUnavailable
from shellflow.model.urls import dialect_of, libpq_url, sqlite_path
from shellflow.redact import mask_text

T = TypeVar("T")

if TYPE_CHECKING:
    from shellflow.model.views import View

# Each driver, and the views of the network's objects, is imported where it is used: a
# command on PostgreSQL never loads sqlite3, and ``flow ls calls`` needs no view.

NOT_INITIALISED = "not initialised; run 'flow db init'"
Row = dict[str, Any]


CONNECT_TIMEOUT = 5  # seconds a database server has to accept a connection


class Reader:
    """A read-only connection that speaks ``?`` placeholders on both databases
    (``writable``: one that also writes, each statement committed on its own unless run in
    a :meth:`transaction`).

    ``connect_timeout``: how long a silent server may keep it waiting (shell completion
    gives up sooner than a command: a TAB must answer).
    """

    def __init__(
        self, url: str, writable: bool = False, connect_timeout: int = CONNECT_TIMEOUT
    ) -> None:
        self.url = url
        self.dialect = dialect_of(url)
        self.writable = writable
        self.connect_timeout = connect_timeout
        self._conn: Any = self._connect()

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            path = sqlite_path(self.url)
            if path is None or not path.exists():
                raise ServiceUnavailable("database", self.url, NOT_INITIALISED)
            import sqlite3

            mode = "rw" if self.writable else "ro"
            try:
                return sqlite3.connect(
                    f"file:{path}?mode={mode}", uri=True, timeout=30, isolation_level=None
                )
            except sqlite3.Error as exc:
                raise ServiceUnavailable("database", self.url, str(exc)) from exc
        if self.dialect == "postgresql":
            import psycopg2

            try:
                conn = psycopg2.connect(libpq_url(self.url), connect_timeout=self.connect_timeout)
            except psycopg2.Error as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "cannot connect"
                raise ServiceUnavailable("database", self.url, reason) from exc
            conn.set_session(readonly=not self.writable, autocommit=True)
            return conn
        raise ServiceUnavailable("database", self.url, f"unsupported database {self.dialect!r}")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._run(sql, params, lambda cursor: list(cursor.fetchall()))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one writing statement (committed at once); the number of rows it changed."""
        return self._run(sql, params, lambda cursor: int(cursor.rowcount))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block's statements in one transaction, committed at its end (rolled back
        if it raises). On SQLite the write lock is taken at once, so the block's reads and
        writes see one state (no other writer can slip in between them)."""
        self._run("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN", (), _nothing)
        try:
            yield
        except BaseException:
            self._run("ROLLBACK", (), _nothing)
            raise
        self._run("COMMIT", (), _nothing)

    def _run(self, sql: str, params: Sequence[Any], result: Callable[[Any], T]) -> T:
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        cursor = self._conn.cursor()
        try:
            cursor.execute(sql, tuple(params))
            return result(cursor)
        except Exception as exc:
            if _missing_table(exc):
                raise ServiceUnavailable("database", self.url, NOT_INITIALISED) from exc
            raise
        finally:
            cursor.close()

    def close(self) -> None:
        self._conn.close()


def _nothing(_cursor: Any) -> None:
    return None


def _missing_table(exc: Exception) -> bool:
    text = str(exc)
    return "no such table" in text or ("relation" in text and "does not exist" in text)


@contextmanager
def reader(url: str) -> Iterator[Reader]:
    conn = Reader(url)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def writer(url: str) -> Iterator[Reader]:
    """A connection that reads and writes, each statement in its own transaction."""
    conn = Reader(url, writable=True)
    try:
        yield conn
    finally:
        conn.close()


def _value(raw: Any, kind: str) -> Any:
    if raw is None:
        return None
    if kind == "bool":
        return bool(raw)
    if kind == "masked":
        return mask_text(str(raw))
    if kind == "time":
        if isinstance(raw, str):
            raw = datetime.fromisoformat(raw)
        if raw.tzinfo is None:
            raw = raw.replace(tzinfo=UTC)
        return raw.astimezone(UTC).isoformat()
    return raw


def _rows(view: View, records: list[tuple[Any, ...]]) -> list[tuple[str, Row]]:
    out = []
    for record in records:
        row = {
            key: _value(raw, kind)
            for (key, _, kind), raw in zip(view.columns, record[1:], strict=True)
        }
        out.append((record[0], row))
    return out


def list_objects(conn: Reader, kind: str, name: str | None = None) -> list[Row]:
    """Every object of a kind, by name (or the rows named ``name`` for non-unique views)."""
    from shellflow.model.views import VIEWS

    view = VIEWS[kind]
    if name is None:
        return [row for _, row in _rows(view, conn.query(view.select()))]
    return [row for _, row in _rows(view, conn.query(view.select("o.name = ?"), [name]))]


def names(conn: Reader, kind: str, prefix: str = "") -> list[str]:
    """Names of a kind starting with ``prefix``: for suggestions and shell completion."""
    from shellflow.model.views import VIEWS

    view = VIEWS[kind]
    sql = (
        f"SELECT DISTINCT o.name FROM {view.table} o WHERE o.name LIKE ? ESCAPE '!' ORDER BY o.name"
    )
    escaped = prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return [r[0] for r in conn.query(sql, [escaped + "%"]) if r[0].startswith(prefix)]


def get_object(conn: Reader, kind: str, name: str) -> Row:
    """One object with its related lists; NotFound (with close names) when it is missing."""
    from shellflow.model.views import VIEWS

    view = VIEWS[kind]
    found = _rows(view, conn.query(view.select("o.name = ?"), [name]))
    if not found:
        raise NotFound(kind, name, names(conn, kind))
    oid, row = found[0]
    for related in view.related:
        params = [oid] * related.sql.count("?")
        records = conn.query(related.sql, params)
        if len(related.columns) == 1:  # a plain list: names of sockets, rights held, ...
            row[related.key] = [r[0] for r in records]
        else:
            items = [dict(zip(related.columns, r, strict=True)) for r in records]
            for item in items:
                for column in related.times:
                    item[column] = _value(item[column], "time")
            row[related.key] = items
    if kind == "user":
        _granted_from_trail(conn, name, row.get("effective", []))
    return row


def _granted_from_trail(conn: Reader, user: str, effective: list[Row]) -> None:
    """Who granted (or revoked) each of the user's rights and when, as the audit trail
    tells it (the trail is append-only; the grant's own columns are whatever the last writer
    put there); a grant older than the trail keeps its columns."""
    from shellflow.model.audit import granted_by

    trail = granted_by(conn, user)
    for item in effective:
        found = trail.get((item["source"], item["right"]))
        if found is not None:
            item["by"], item["last_updated"] = found
