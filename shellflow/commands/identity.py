"""``flow login | logout | whoami`` and ``flow token create | ls | revoke``: who acts.

A login keeps a session token (never the password) in ``sessions.json`` next to the ini
file (mode 0600); scripts and CI use ``SHELLFLOW_TOKEN`` with a token from ``flow token
create``. Without either, the owner acts: the OS user owning the embedded database, or the
role of the PostgreSQL URL. See ``shellflow.model.credentials``.
"""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from typing import Any

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.params import TEXT

_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_lifetime(text: str, option: str) -> timedelta | None:
    """``30d``, ``12h``, ``90m``, ``2w``; ``never`` for a token that does not expire."""
    if text.strip().lower() == "never":
        return None
    match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if not match or int(match[1]) == 0:
        raise click.BadParameter(
            f"{text!r} is not a duration like 30d, 12h or 90m (or 'never')", param_hint=option
        )
    try:
        return timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    except OverflowError as exc:
        raise click.BadParameter(f"{text!r} is too long", param_hint=option) from exc


def _read_password(from_stdin: bool) -> str:
    from shellflow.commands.output import stdin_is_tty

    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.UsageError("--password-stdin: stdin held no password")
        return line
    if not stdin_is_tty():
        raise click.UsageError("no terminal to ask the password on; use --password-stdin")
    password: str = click.prompt("Password", hide_input=True, err=True)
    return password


@click.command("login")
@click.option("-u", "--user", required=True, type=TEXT, help="User name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin's first line")
@click.option("--expires", default="12h", show_default=True, metavar="DURATION",
              help="How long the session lasts (30d, 12h, 90m, or never)")  # fmt: skip
@pass_app
def login(app: AppContext, user: str, password_stdin: bool, expires: str) -> None:
    """Log in: later commands act as USER until the session expires or you log out.

    The password is asked on the terminal (hidden), or read with --password-stdin. A wrong
    user or password exits 5 with the same message; each further failure for the same user
    name waits twice as long as the previous one before it is checked.
    """
    from shellflow.commands.output import info
    from shellflow.services import identity

    lifetime = parse_lifetime(expires, "--expires")
    password = _read_password(password_stdin)
    done = identity.login(app.settings, user, password, lifetime)
    until = f" until {done.expires:%Y-%m-%d %H:%M} UTC" if done.expires else ""
    info(f"Logged in as {done.user!r}{until}.")


@click.command("logout")
@pass_app
def logout(app: AppContext) -> None:
    """Log out: revoke this database's session and forget its token."""
    from shellflow.commands.output import info
    from shellflow.services import identity

    user = identity.logout(app.settings)
    info(f"Logged out {user!r}." if user else "No session to log out of.")


@click.command("whoami")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object")
@pass_app
def whoami(app: AppContext, as_json: bool) -> None:
    """Show who acts, where that identity came from, and when it expires."""
    from shellflow.commands.output import print_object
    from shellflow.services import identity

    print_object(identity.whoami(app.principal), as_json)


@click.group("token")
def token() -> None:
    """Create, list and revoke tokens for scripts and CI (used through SHELLFLOW_TOKEN)."""


@token.command("create")
@click.option("--expires", default="30d", show_default=True, metavar="DURATION",
              help="How long the token lasts (30d, 12h, 90m, or never)")  # fmt: skip
@click.option("-n", "--name", type=TEXT, help="A name to list and revoke it by")
@click.option(
    "-u", "--user", type=TEXT, help="Whose token (default: yours; others' need UPDATE_USER)"
)
@pass_app
def token_create(app: AppContext, expires: str, name: str | None, user: str | None) -> None:
    """Print a new token once (it is stored only as a digest): SHELLFLOW_TOKEN=... flow ..."""
    from shellflow.commands.output import info
    from shellflow.services import identity

    lifetime = parse_lifetime(expires, "--expires")
    secret, until = identity.create_token(app.settings, app.principal, user, name, lifetime)
    click.echo(secret)
    info("Token created" + (f", valid until {until:%Y-%m-%d %H:%M} UTC" if until else
                            ", valid until revoked") + "; it is not shown again.")  # fmt: skip


@token.command("ls")
@click.option("-u", "--user", type=TEXT, help="Whose tokens (default: yours)")
@click.option("-a", "--all", "everyone", is_flag=True, help="Everyone's (needs LS_USERS)")
@click.option("--json", "as_json", is_flag=True, help="NDJSON (one JSON object a line)")
@pass_app
def token_ls(app: AppContext, user: str | None, everyone: bool, as_json: bool) -> None:
    """List sessions and tokens: id, user, kind, name, dates and state; never a secret."""
    from datetime import UTC, datetime

    from shellflow.commands.output import print_rows
    from shellflow.services import identity

    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        r.to_dict(now) for r in identity.list_tokens(app.settings, app.principal, user, everyone)
    ]
    columns = ["id", "user", "kind", "name", "created", "expires", "revoked", "state"]
    print_rows(columns, rows, as_json)


@token.command("revoke")
@click.argument("ident", metavar="ID|NAME", type=TEXT)
@click.option("-u", "--user", type=TEXT, help="Whose token (default: yours)")
@pass_app
def token_revoke(app: AppContext, ident: str, user: str | None) -> None:
    """Revoke a session or token: it is refused from now on."""
    from shellflow.commands.output import info
    from shellflow.services import identity

    row = identity.revoke_token(app.settings, app.principal, ident, user)
    info(f"Revoked {row.kind} {row.name or row.id} of {row.user!r}.")
