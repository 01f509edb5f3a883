"""Alembic environment: runs on the connection shellflow hands over (never from an ini)."""

from alembic import context

from shellflow.model.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `alembic revision --autogenerate` by hand
    from sqlalchemy import create_engine

    connection = create_engine(context.config.get_main_option("sqlalchemy.url") or "").connect()

if connection.dialect.name == "postgresql":
    # Row-level security's view and function read the tables: set aside so a revision may
    # change or drop what they read; ``schema`` puts them back after an upgrade (model.rls).
    from shellflow.model import pg_roles, rls

    rls.unsecure(pg_roles.raw_cursor(connection))

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
