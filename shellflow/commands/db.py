"""``flow db``: initialise, migrate, drop, rebuild and export the model database."""

from __future__ import annotations

import json

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info, stdin_is_tty
from shellflow.commands.params import whole
from shellflow.errors import ExitCode, UsageError
from shellflow.redact import mask_url


def _confirm_destruction(app: AppContext, yes: bool, action: str) -> None:
    """Destroying data needs -y, or a 'yes' typed at a terminal; otherwise nothing happens."""
    if yes:
        return
    where = mask_url(app.settings.db)
    if not stdin_is_tty():
        raise UsageError(f"{action} would delete every object in {where}; add -y to confirm")
    if not click.confirm(f"{action} deletes every object in {where}. Continue?", err=True):
        info("Nothing was changed.")
        raise click.exceptions.Exit(ExitCode.INTERRUPTED)


def _secured(tables: tuple[str, ...]) -> None:
    """As the spec's ``flow db init`` does: one line per table newly under row-level security
    (PostgreSQL only; ``shellflow.model.rls``)."""
    for table in tables:
        info(f"Enabling security on table {table}")


@click.group()
def db() -> None:
    """Database operations."""


@db.command("init")
@click.option(
    "--rotate-key", is_flag=True,
    help="Replace the deployment's result-signing key; results signed with the old one "
    "are still accepted for 24 hours (docs/security.md)",
)  # fmt: skip
@pass_app
def db_init(app: AppContext, rotate_key: bool) -> None:
    """Initialise database tables (does nothing on an initialised database).

    On PostgreSQL it also enables row-level security with shellflow's policies on every
    table (again on an initialised database), so a user connecting with their own login
    role sees and changes only what their rights allow. Also makes the key workers sign
    results with (callers take no result without it).
    """
    from shellflow.model import result_keys, schema

    app.authorize("DB_INIT", "the database")
    url = mask_url(app.settings.db)
    before, after = schema.initialise(app.settings.db)
    _secured(after.secured)
    if rotate_key:
        result_keys.rotate(app.settings.db)
        hours = result_keys.GRACE // 3600
        info(f"Result-signing key of {url} rotated; results signed with the previous key "
             f"are accepted for {hours} hours.")  # fmt: skip
    else:
        result_keys.ensure(app.settings.db)
    if not before.initialised:
        info(f"Database {url} initialised: {after.tables} tables, revision {after.current}.")
        _service_identity(app)
    elif before.up_to_date:
        info(f"Database {url} is already initialised (revision {before.current}); "
             "nothing changed.")  # fmt: skip
    else:
        info(f"Database {url} is at revision {before.current}; run 'flow db migrate' "
             f"to reach {before.head}. Nothing changed.")  # fmt: skip


def _service_identity(app: AppContext) -> None:
    """Create the agents' own user and token (``shellflow.services.identity``)."""
    from shellflow.services import identity

    path = identity.ensure_service_identity(app.settings, app.principal.name)
    if path is not None:
        info(
            f"Service user {identity.SERVICE_USER!r} created for agents; its token is in "
            f"{path} (mode 0600): run remote agents with SHELLFLOW_TOKEN=$(cat {path})."
        )


@db.command("migrate")
@pass_app
def db_migrate(app: AppContext) -> None:
    """Perform database migration/upgrade to this version of shellflow."""
    from shellflow.model import schema

    app.authorize("DB_INIT", "the database")
    before, after = schema.migrate(app.settings.db)
    _secured(after.secured)
    if before.up_to_date:
        info(f"Database is at the newest revision ({before.head}); nothing to do.")
        return
    info(f"Database migrated from {before.current or 'empty'} to {after.current}.")
    _service_identity(app)  # a database from before service identities gains one


@db.command("drop")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation")
@pass_app
def db_drop(app: AppContext, yes: bool) -> None:
    """Drop all database tables."""
    from shellflow.model import schema

    app.authorize("DB_DROP", "the database")
    _confirm_destruction(app, yes, "Dropping the database")
    count = schema.drop(app.settings.db)
    info(f"Dropped {count} tables from {mask_url(app.settings.db)}.")


@db.command("rebuild")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation")
@pass_app
def db_rebuild(app: AppContext, yes: bool) -> None:
    """Drop and rebuild database tables."""
    from shellflow.model import schema

    app.authorize("DB_DROP", "the database")
    app.authorize("DB_INIT", "the database")
    _confirm_destruction(app, yes, "Rebuilding the database")
    count, after = schema.rebuild(app.settings.db)
    _secured(after.secured)
    info(f"Dropped {count} tables and rebuilt {after.tables} (revision {after.current}).")


@db.command("json")
@click.option("--indent", type=whole(0, 64), help="Pretty-print with this indent")
@pass_app
def db_json(app: AppContext, indent: int | None) -> None:
    """Dump the database to JSON: one object, a list of rows per table (no password hashes;
    passwords inside URLs, such as a git token, are masked)."""
    from shellflow.model import schema

    app.authorize("READ", "the database")
    data = schema.export(app.settings.db)
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(data, indent=indent, separators=separators, ensure_ascii=False, default=str)
    click.echo(text)
