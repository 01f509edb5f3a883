"""``flow config show|path``, the interactive ``flow --config``, and the settings kept in the
database for the whole deployment (``flow config set|get|unset repos.allow|metrics.retention``)."""

from __future__ import annotations

from pathlib import Path

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info, print_rows, stdin_is_tty
from shellflow.config import DESCRIPTIONS, KEYS, defaults, write_ini
from shellflow.redact import mask_url


def _ask(key: str, current: str) -> str:
    """Prompt with the current value as default, shown with its password masked."""
    shown = mask_url(current)
    answer: str = click.prompt(
        f"{DESCRIPTIONS[key]} [{shown}]", default=current, show_default=False, err=True
    )
    return answer.strip() or current


def configure_interactively(app: AppContext) -> None:
    """Ask for each setting (on a terminal only) and write the ini file (mode 0600).

    Without a terminal nothing is asked: the effective values (flags and environment
    included) are written as they are, which makes ``flow --db URL --config`` scriptable.
    On a terminal, settings still at their default follow a newly chosen home folder.
    """
    app.authorize("UPDATE", "configuration")
    settings = app.settings
    values = {key: settings[key] for key in KEYS}
    if stdin_is_tty():
        values["home"] = _ask("home", values["home"])
        moved = defaults(Path(values["home"]).expanduser())
        for key in KEYS[1:]:
            if settings.values[key].source == "default":
                values[key] = moved[key]
            values[key] = _ask(key, values[key])
    write_ini(settings.ini_path, values)
    info(f"Configuration file written to {settings.ini_path}")


@click.group()
def config() -> None:
    """Show or change the configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="NDJSON (one JSON object a line)")
@pass_app
def config_show(app: AppContext, as_json: bool) -> None:
    """Print each effective setting, where it came from, passwords masked."""
    app.authorize("READ", "configuration")
    rows = [{"setting": k, "value": v, "source": s} for k, v, s in app.settings.rows()]
    rows.append(
        {
            "setting": "ini",
            "value": str(app.settings.ini_path),
            "source": app.settings.extras["ini"],
        }
    )
    print_rows(["setting", "value", "source"], rows, as_json)


@config.command("path")
@pass_app
def config_path(app: AppContext) -> None:
    """Print the configuration file's path."""
    app.authorize("READ", "configuration")
    click.echo(str(app.settings.ini_path))


# Settings kept in the database, so that every agent and client of the deployment reads
# one value (``flow config set|get|unset``): the repository allowlist, the metrics' retention.
DB_KEYS = ("repos.allow", "metrics.retention")
RETENTION = "metrics.retention"
_DB_KEY = click.Choice(DB_KEYS)


@config.command("set")
@click.argument("key", type=_DB_KEY)
@click.argument("values", nargs=-1, required=True)
@pass_app
def config_set(app: AppContext, key: str, values: tuple[str, ...]) -> None:
    """Set a deployment-wide setting in the database (the owner only).

    repos.allow: the git repositories processors may come from, as fnmatch patterns
    ('https://github.com/myorg/*', 'file:///srv/repos/*', '/srv/repos/*'); the list given
    replaces the stored one. A processor whose repository no pattern matches is refused by
    'flow add|update processor', 'flow compose up', the Python API and every agent (exit 5).

    metrics.retention: how long the metrics kept for analysis ('flow ls metrics') are kept,
    as 30d, 12h or a number of days (1h to 3650d); the default is 30 days.
    """
    from shellflow.model import repos
    from shellflow.model.db import session_scope

    app.authorize("ALL", key)
    if key == RETENTION:
        from shellflow.errors import UsageError
        from shellflow.model import retention

        if len(values) != 1:
            raise UsageError(f"{key}: give one duration, like 30d")
        with session_scope(app.settings.db) as session:
            info(f"{key} set to {retention.save(session, values[0], app.principal.name)}")
        return
    with session_scope(app.settings.db) as session:
        kept = repos.save(session, values, app.principal.name)
    info(f"{key} set to " + ", ".join(repr(p) for p in kept))


@config.command("get")
@click.argument("key", type=_DB_KEY)
@pass_app
def config_get(app: AppContext, key: str) -> None:
    """Print a deployment-wide setting's values, one a line (where it comes from on stderr).

    repos.allow: the database's list; else the ini file's; else nothing, which allows every
    repository on the embedded SQLite database and none on PostgreSQL.

    metrics.retention: the stored duration, else the default (30d).
    """
    from shellflow.model import repos
    from shellflow.model.db import session_scope

    app.authorize("READ", "configuration")
    if key == RETENTION:
        from shellflow.model import retention

        with session_scope(app.settings.db) as session:
            text = retention.stored(session)
        click.echo(text or f"{retention.DEFAULT}d")
        info("database" if text else "default")
        return
    ini = repos.split_ini(app.settings.repos_allow)
    with session_scope(app.settings.db) as session:
        allowed = repos.effective(session, ini, f"ini {app.settings.ini_path}")
    for pattern in allowed.patterns or ():
        click.echo(pattern)
    info(allowed.describe())


@config.command("unset")
@click.argument("key", type=_DB_KEY)
@pass_app
def config_unset(app: AppContext, key: str) -> None:
    """Remove a deployment-wide setting from the database (the owner only).

    Without a stored repos.allow the ini file's list applies, else the default: every
    repository on the embedded SQLite database, none on PostgreSQL. Without a stored
    metrics.retention the metrics are kept 30 days.
    """
    from shellflow.model import repos, retention
    from shellflow.model.db import session_scope

    app.authorize("ALL", key)
    with session_scope(app.settings.db) as session:
        removed = retention.remove(session) if key == RETENTION else repos.remove(session)
    info(f"{key} removed from the database" if removed else f"{key} was not set in the database")
