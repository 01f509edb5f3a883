"""The Alembic migrations build exactly the ORM's schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect

from shellflow.model import schema
from shellflow.model.tables import Base
from shellflow.model.urls import sqlalchemy_url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine(sqlalchemy_url(db_url))
    yield eng
    eng.dispose()


def differences(engine: Engine) -> list[Any]:
    """What ``alembic revision --autogenerate`` would write: tables, columns, types,
    nullability, server defaults, indexes, unique constraints and foreign keys."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))


def test_the_migrated_schema_is_the_orm_schema(cli: Any, db_url: str, engine: Engine) -> None:
    cli.ok("db", "init")
    # No exceptions: every difference alembic can see, including purely cosmetic ones,
    # would be a migration to write.
    assert differences(engine) == []
    # and the check can see a difference: an empty database differs by every table
    assert differences_after_drop(cli, engine)


def differences_after_drop(cli: Any, engine: Engine) -> list[Any]:
    cli.ok("db", "drop", "-y")
    found = differences(engine)
    added = {diff[1].name for diff in found if diff[0] == "add_table"}
    assert added == set(Base.metadata.tables)
    return found


def test_downgrade_removes_everything_and_upgrade_restores_it(
    initialised_db: str, engine: Engine
) -> None:
    with engine.begin() as conn:
        command.downgrade(schema.alembic_config(conn), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    schema.upgrade(initialised_db)
    assert differences(engine) == []
