"""Create, migrate, drop and export the model database (Alembic under the hood).

Every change runs in one transaction that also holds a schema lock (``BEGIN IMMEDIATE`` on
SQLite, an advisory lock on PostgreSQL): two ``flow db init`` at once serialise instead of
colliding, and a step that fails leaves the database as it was, DDL included (SQLite's
driver would otherwise commit each ``CREATE``/``DROP`` on its own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, select, text

from shellflow.errors import Conflict
from shellflow.model.db import get_engine, translated
from shellflow.model.tables import Base
from shellflow.redact import mask_text, mask_url

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
# Hashes are not secrets in the clear, but nobody needs them in an export.
SECRET_COLUMNS = {"password_hash", "hash", "token_hash"}
# pg_advisory_xact_lock key shared by every shellflow schema change ("sflow" in ASCII).
_PG_SCHEMA_LOCK = 0x73666C6F77


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str
    tables: int
    # Tables on which this step enabled row-level security (PostgreSQL, ``model.rls``).
    secured: tuple[str, ...] = field(default=(), compare=False)

    @property
    def initialised(self) -> bool:
        return self.current is not None

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def _state(conn: Connection) -> SchemaState:
    current = MigrationContext.configure(conn).get_current_revision()
    tables = len([t for t in inspect(conn).get_table_names() if t != VERSION_TABLE])
    return SchemaState(current=current, head=head(), tables=tables)


@contextmanager
def _locked(url: str) -> Iterator[Connection]:
    """One transaction holding the schema lock; committed at the end, rolled back on error."""
    with translated(url), get_engine(url).connect() as conn, conn.begin():
        if conn.dialect.name == "sqlite":
            # pysqlite leaves DDL outside transactions; an explicit BEGIN makes it atomic.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_SCHEMA_LOCK})")
        yield conn


def state(url: str) -> SchemaState:
    with translated(url), get_engine(url).connect() as conn:
        return _state(conn)


def _refuse_foreign(url: str, before: SchemaState) -> None:
    """Tables without shellflow's revision record belong to someone else: leave them be."""
    if not before.initialised and before.tables:
        raise Conflict(
            f"database {mask_url(url)} holds {before.tables} tables but no shellflow schema; "
            "use an empty database"
        )


def _upgrade_unless(
    url: str, done: Callable[[SchemaState], bool]
) -> tuple[SchemaState, SchemaState]:
    """Under the schema lock: upgrade to head unless ``done(state)``; (before, after)."""
    with _locked(url) as conn:
        before = _state(conn)
        if done(before):
            if not before.initialised:
                return before, before
            return before, replace(before, secured=_secure(conn))
        _refuse_foreign(url, before)
        # The migrations set row-level security's view and function aside (a revision may
        # change what they read: migrations/env.py); _secure puts them back.
        command.upgrade(alembic_config(conn), "head")
        return before, replace(_state(conn), secured=_secure(conn))


def _secure(conn: Connection) -> tuple[str, ...]:
    """Row-level security on every table (PostgreSQL; nothing on SQLite): ``model.rls``."""
    if conn.dialect.name != "postgresql":
        return ()
    from shellflow.model import rls

    return tuple(rls.secure(conn))


def initialise(url: str) -> tuple[SchemaState, SchemaState]:
    """Create the schema on an empty database; (state before, state after).

    An initialised database is left untouched (before == after), whatever its revision.
    """
    return _upgrade_unless(url, lambda state: state.initialised)


def migrate(url: str) -> tuple[SchemaState, SchemaState]:
    """Upgrade to the newest revision (an empty database is created from scratch)."""
    return _upgrade_unless(url, lambda state: state.up_to_date)


def upgrade(url: str) -> None:
    """Bring the database to the newest revision (for tests and scripts)."""
    migrate(url)


def _drop(conn: Connection) -> int:
    present = set(inspect(conn).get_table_names())
    if conn.dialect.name == "postgresql" and "users" in present:
        from shellflow.model import pg_roles, rls

        cur = pg_roles.raw_cursor(conn)
        rls.unsecure(cur)  # the view reads the tables about to go
        for role in rls.user_roles(cur):  # the users go, and their login roles with them
            pg_roles.drop_role(cur, role)
    ours = [t for t in Base.metadata.sorted_tables if t.name in present]
    Base.metadata.drop_all(conn, tables=ours)
    if VERSION_TABLE in present:
        conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
    return len(ours)


def drop(url: str) -> int:
    """Drop every shellflow table and the migration record; returns how many tables went.

    Tables that are not shellflow's are left alone.
    """
    with _locked(url) as conn:
        return _drop(conn)


def rebuild(url: str) -> tuple[int, SchemaState]:
    """Drop and recreate in one transaction: a failure keeps the old data."""
    with _locked(url) as conn:
        dropped = _drop(conn)
        command.upgrade(alembic_config(conn), "head")
        return dropped, replace(_state(conn), secured=_secure(conn))


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):  # a git URL with its token, git's error quoting it: masked
        return mask_text(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


@contextmanager
def _snapshot(url: str) -> Iterator[Connection]:
    """A read transaction that sees one moment of the database, on both dialects."""
    with translated(url), get_engine(url).connect() as conn:
        if conn.dialect.name == "sqlite":
            with conn.begin():
                conn.exec_driver_sql("BEGIN")  # pysqlite starts none for reads
                yield conn
        else:
            snap = conn.execution_options(isolation_level="REPEATABLE READ")
            with snap.begin():
                yield snap


def export(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows, in dependency order, with secret hashes left out and the
    passwords of URLs in any text masked (``flow db json`` is for reading, not a backup)."""
    out: dict[str, list[dict[str, Any]]] = {}
    with _snapshot(url) as conn:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name not in SECRET_COLUMNS]
            order = list(table.primary_key.columns)
            rows = conn.execute(select(*columns).order_by(*order)).mappings()
            out[table.name] = [{k: _jsonable(v) for k, v in row.items()} for row in rows]
    return out
