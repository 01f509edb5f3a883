"""``flow db``: initialise, migrate, drop, rebuild and export the model database."""

from __future__ import annotations

import json

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info, stdin_is_tty
from shellflow.config import mask_url


def _confirm_destruction(app: AppContext, yes: bool, action: str) -> None:
    """Destroying data needs -y, or a 'yes' typed at a terminal."""
    if yes:
        return
    where = mask_url(app.settings.db)
    if not stdin_is_tty():
        raise click.UsageError(f"{action} would delete every object in {where}; add -y to confirm")
    click.confirm(f"{action} deletes every object in {where}. Continue?", abort=True, err=True)


@click.group()
def db() -> None:
    """Database operations."""


@db.command("init")
@pass_app
def db_init(app: AppContext) -> None:
    """Initialise the database tables (does nothing on an initialised database)."""
    from shellflow.model import schema

    app.authorize("DB_INIT")
    url = mask_url(app.settings.db)
    before = schema.state(app.settings.db)
    if before.initialised:
        if before.up_to_date:
            info(f"Database {url} is already initialised (revision {before.current}); "
                 "nothing changed.")  # fmt: skip
        else:
            info(f"Database {url} is at revision {before.current}; run 'flow db migrate' "
                 f"to reach {before.head}. Nothing changed.")  # fmt: skip
        return
    if before.tables:
        from shellflow.errors import Conflict

        raise Conflict(f"database {url} holds {before.tables} tables but no shellflow schema; "
                       "use an empty database")  # fmt: skip
    schema.upgrade(app.settings.db)
    after = schema.state(app.settings.db)
    info(f"Database {url} initialised: {after.tables} tables, revision {after.current}.")


@db.command("migrate")
@pass_app
def db_migrate(app: AppContext) -> None:
    """Upgrade the database schema to this version of shellflow."""
    from shellflow.model import schema

    app.authorize("DB_INIT")
    before = schema.state(app.settings.db)
    if before.up_to_date:
        info(f"Database is at the newest revision ({before.head}); nothing to do.")
        return
    schema.upgrade(app.settings.db)
    info(f"Database migrated from {before.current or 'empty'} to {before.head}.")


@db.command("drop")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation")
@pass_app
def db_drop(app: AppContext, yes: bool) -> None:
    """Drop all database tables."""
    from shellflow.model import schema

    app.authorize("DB_DROP")
    _confirm_destruction(app, yes, "Dropping the database")
    count = schema.drop(app.settings.db)
    info(f"Dropped {count} tables from {mask_url(app.settings.db)}.")


@db.command("rebuild")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation")
@pass_app
def db_rebuild(app: AppContext, yes: bool) -> None:
    """Drop and rebuild the database tables."""
    from shellflow.model import schema

    app.authorize("DB_DROP")
    app.authorize("DB_INIT")
    _confirm_destruction(app, yes, "Rebuilding the database")
    count = schema.drop(app.settings.db)
    schema.upgrade(app.settings.db)
    after = schema.state(app.settings.db)
    info(f"Dropped {count} tables and rebuilt {after.tables} (revision {after.current}).")


@db.command("json")
@click.option("--indent", type=click.IntRange(min=0), help="Pretty-print with this indent")
@pass_app
def db_json(app: AppContext, indent: int | None) -> None:
    """Dump the whole database as one JSON object, table by table (password hashes left out)."""
    from shellflow.model import schema

    app.authorize("READ")
    data = schema.export(app.settings.db)
    separators = (",", ":") if indent is None else (",", ": ")
    click.echo(json.dumps(data, indent=indent, separators=separators, ensure_ascii=False))
