"""Engines and sessions, with database errors turned into shellflow's exit codes.

SQLite gets WAL and ``synchronous=NORMAL`` (about 2.5x the write rate of the defaults, see
BASELINES.md) and enforced foreign keys; PostgreSQL is reached through psycopg2.

Engines are kept per process (``shellflow.process_state``). A forked child (a prefork
worker's pool process) keeps them but not their pooled connections, which are its parent's:
as celery's database session does, and as SQLAlchemy advises, the child starts with empty
pools (``dispose(close=False)``) and connects on first use, never closing the parent's.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

from shellflow import process_state
from shellflow.errors import Conflict, ServiceUnavailable, UsageError
from shellflow.model.urls import require_supported, sqlalchemy_url, sqlite_path
from shellflow.private import private_dir, touch_private
from shellflow.redact import mask_text, mask_url

NOT_INITIALISED = "not initialised; run 'flow db init'"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class _Engines:
    """One engine per URL in this process; the lock keeps two threads from making two."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_url: dict[str, Engine] = {}

    def after_fork(self) -> None:
        self.lock = threading.Lock()
        for engine in self.by_url.values():
            engine.dispose(close=False)  # the parent's connections stay open, for the parent


_engines = process_state.own(__name__, _Engines())


def get_engine(url: str) -> Engine:
    """One engine per URL per process; creates the SQLite file's folder on first use.

    A URL of an unsupported kind is a usage error (exit 2); a folder that cannot be made
    means the database is unavailable (exit 6).
    """
    return process_state.made_once(_engines.by_url, _engines.lock, url, lambda: _create_engine(url))


def _create_engine(url: str) -> Engine:
    dialect = require_supported(url)
    try:
        if dialect == "sqlite":
            path = sqlite_path(url)
            if path is not None:  # the database and (same mode) its WAL: 0600, in 0700
                private_dir(path.parent)
                touch_private(path)
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(
                sqlalchemy_url(url), pool_pre_ping=True, connect_args={"connect_timeout": 5}
            )
    except OSError as error:
        raise ServiceUnavailable("database", url, _first_line(error)) from error
    except (exc.ArgumentError, ValueError) as error:  # unparsable (say, a port that is no number)
        raise UsageError(f"bad database URL {mask_url(url)}: {_first_line(error)}") from error
    return engine


def dispose_engines() -> None:
    """Close every engine's connections and forget the engines (a test's database is gone)."""
    with _engines.lock:
        engines = list(_engines.by_url.values())
        _engines.by_url.clear()
    for engine in engines:
        engine.dispose()


def translate(error: exc.SQLAlchemyError, url: str) -> Exception:
    """Map a database error to the shellflow error a user can act on.

    Anything unexpected is returned unchanged (and so shows as an internal error): a
    misleading exit code would be worse than an honest "internal error".
    """
    reason = _first_line(getattr(error, "orig", None) or error)
    if isinstance(error, exc.IntegrityError):
        return Conflict(f"conflicts with stored data: {reason}")
    if isinstance(error, exc.DataError):
        return UsageError(f"a value does not fit the database: {reason}")
    if _missing_column(reason):  # before tables: PostgreSQL names the relation here too
        return ServiceUnavailable(
            "database", url, f"schema does not match this shellflow ({reason}); "
            "try 'flow db migrate'"
        )  # fmt: skip
    if _missing_table(reason):
        return ServiceUnavailable("database", url, NOT_INITIALISED)
    if isinstance(error, exc.OperationalError | exc.InterfaceError):
        return ServiceUnavailable("database", url, reason)
    if type(error) is exc.DatabaseError:
        # The bare class: sqlite's "file is not a database", a corrupt file and the like.
        return ServiceUnavailable("database", url, reason)
    return error


def _missing_table(reason: str) -> bool:
    return "no such table" in reason or ('relation "' in reason and "does not exist" in reason)


def _missing_column(reason: str) -> bool:
    if "no such column" in reason or "has no column named" in reason:
        return True
    return re.search(r"\bcolumn \S+ (of relation \S+ )?does not exist", reason) is not None


def _first_line(error: BaseException | None) -> str:
    """The first line of an error, with any URL in it masked (driver messages may hold one)."""
    text = str(error or "").strip()
    return mask_text(text.splitlines()[0]) if text else type(error).__name__


@contextmanager
def translated(url: str) -> Iterator[None]:
    """Run a block with database errors turned into shellflow errors."""
    try:
        yield
    except exc.SQLAlchemyError as error:
        mapped = translate(error, url)
        if mapped is error:
            raise
        raise mapped from error


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A transaction: committed when the block ends, rolled back on any error."""
    factory = sessionmaker(bind=get_engine(url), expire_on_commit=False)
    session = factory()
    try:
        with translated(url):
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
    finally:
        session.close()
