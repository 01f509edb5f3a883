"""``flow ls audit``: the audit trail, newest first, for those holding READ_AUDIT."""

from __future__ import annotations

from typing import Any

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.params import TEXT, parse_since
from shellflow.model.audit import ACTIONS

AUDIT_COLUMNS = ["when", "who", "action", "kind", "name", "change", "where"]


def change_of(row: dict[str, Any]) -> str:
    """One line saying what a row changed: the fields that differ (``key: old -> new``) for
    an update, the holder for a grant, the message for a refusal, what was forced."""
    before, after = row.get("before") or {}, row.get("after") or {}
    if row["action"] == "refused":
        return str(after.get("message", ""))
    if row["action"] in ("grant", "revoke"):
        holder = after or before
        return ", ".join(f"{k} {v}" for k, v in holder.items())
    if before and after:
        keys = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
        return ", ".join(f"{k}: {_short(before.get(k))} -> {_short(after.get(k))}" for k in keys)
    shown = after or before
    if row["action"] in ("force", "login", "login_failed", "logout"):
        return ", ".join(f"{k}: {_short(v)}" for k, v in shown.items())
    return ""


def _short(value: Any, width: int = 40) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


@click.command("audit")
@click.option("--since", metavar="TIME",
              help="Only rows since TIME (ISO time, or 90s, 15m, 2h, 1d ago)")  # fmt: skip
@click.option("-u", "--user", type=TEXT, help="Only what this user did (or was refused)")
@click.option("--action", type=click.Choice(ACTIONS), metavar="ACTION",
              help="Only rows of this action: " + ", ".join(ACTIONS))  # fmt: skip
@click.option("-r", "--rows", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="At most this many rows")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="NDJSON (one JSON object a line)")
@pass_app
def ls_audit(
    app: AppContext, since: str | None, user: str | None, action: str | None, rows: int,
    as_json: bool,
) -> None:  # fmt: skip
    """List the audit trail, newest first: every change of the network, every grant and
    revocation, every refusal and login, with who, when, where and the object before and
    after (secrets left out). Needs the READ_AUDIT right."""
    from shellflow.commands.output import print_rows
    from shellflow.model.audit import rows as audit_rows

    app.authorize("READ_AUDIT", "the audit trail")
    moment = parse_since(since) if since is not None else None
    with app.reader() as conn:
        found = audit_rows(conn, since=moment, user=user, action=action, limit=rows)
    if not as_json:
        for row in found:
            row["change"] = change_of(row)
    print_rows(AUDIT_COLUMNS, found, as_json)
