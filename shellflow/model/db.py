"""Engines and sessions, with database errors turned into shellflow's exit codes.

SQLite gets WAL and ``synchronous=NORMAL`` (about 2.5x the write rate of the defaults, see
BASELINES.md) and enforced foreign keys; PostgreSQL is reached through psycopg2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

from shellflow.errors import Conflict, ServiceUnavailable
from shellflow.model.urls import dialect_of, sqlalchemy_url, sqlite_path

_engines: dict[str, Engine] = {}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def get_engine(url: str) -> Engine:
    """One engine per URL per process; creates the SQLite file's folder on first use."""
    engine = _engines.get(url)
    if engine is not None:
        return engine
    if dialect_of(url) == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(
            sqlalchemy_url(url), pool_pre_ping=True, connect_args={"connect_timeout": 5}
        )
    _engines[url] = engine
    return engine


def dispose_engines() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def translate(error: exc.SQLAlchemyError, url: str) -> Exception:
    """Map a database error to the shellflow error a user can act on."""
    if isinstance(error, exc.IntegrityError):
        return Conflict(f"conflicts with stored data: {_first_line(error.orig)}")
    if isinstance(error, exc.OperationalError | exc.InterfaceError):
        reason = _first_line(error.orig)
        if "no such table" in reason or ("does not exist" in reason and "relation" in reason):
            return ServiceUnavailable("database", url, "not initialised; run 'flow db init'")
        return ServiceUnavailable("database", url, reason)
    if isinstance(error, exc.ProgrammingError) and "does not exist" in str(error.orig):
        return ServiceUnavailable("database", url, "not initialised; run 'flow db init'")
    return error


def _first_line(error: BaseException | None) -> str:
    text = str(error or "").strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A transaction: committed when the block ends, rolled back on any error."""
    factory = sessionmaker(bind=get_engine(url), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except exc.SQLAlchemyError as error:
        session.rollback()
        translated = translate(error, url)
        if translated is error:
            raise
        raise translated from error
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
