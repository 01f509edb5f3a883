"""Create, migrate, drop and export the model database (Alembic under the hood).

``init`` and ``migrate`` both upgrade to the newest revision; ``init`` refuses to touch a
database that already holds a schema, so running it twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, select, text

from shellflow.model.db import get_engine, translate
from shellflow.model.tables import Base

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
# Hashes are not secrets in the clear, but nobody needs them in an export.
SECRET_COLUMNS = {"password_hash", "hash", "token_hash"}


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str
    tables: int

    @property
    def initialised(self) -> bool:
        return self.current is not None

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _guard(url: str) -> Any:
    """Run a block with database errors translated to shellflow errors."""
    from contextlib import contextmanager

    from sqlalchemy import exc

    @contextmanager
    def block() -> Any:
        try:
            yield
        except exc.SQLAlchemyError as error:
            translated = translate(error, url)
            if translated is error:
                raise
            raise translated from error

    return block()


def state(url: str) -> SchemaState:
    head = ScriptDirectory.from_config(_config()).get_current_head() or ""
    with _guard(url), get_engine(url).connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        tables = len([t for t in inspect(conn).get_table_names() if t != VERSION_TABLE])
    return SchemaState(current=current, head=head, tables=tables)


def upgrade(url: str) -> None:
    with _guard(url), get_engine(url).begin() as conn:
        command.upgrade(_config(conn), "head")


def drop(url: str) -> int:
    """Drop every shellflow table and the migration record; returns how many tables went."""
    with _guard(url), get_engine(url).begin() as conn:
        present = set(inspect(conn).get_table_names())
        ours = [t for t in Base.metadata.sorted_tables if t.name in present]
        Base.metadata.drop_all(conn, tables=ours)
        if VERSION_TABLE in present:
            conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
    return len(ours)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def export(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows, in dependency order, with secret hashes left out."""
    out: dict[str, list[dict[str, Any]]] = {}
    with _guard(url), get_engine(url).connect() as conn:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name not in SECRET_COLUMNS]
            rows = conn.execute(select(*columns)).mappings()
            out[table.name] = [{k: _jsonable(v) for k, v in row.items()} for row in rows]
    return out
