"""``flow ls metrics``: the per-socket, per-minute aggregates kept for analysis."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from shellflow.commands import later_completer
from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.params import TEXT, parse_since

if TYPE_CHECKING:
    from shellflow.model.listing import Reader


@click.command("metrics")
@click.option("--socket", type=TEXT, help="Only the rows of this socket",
              shell_complete=later_completer("names_of", "socket"))  # fmt: skip
@click.option("--since", metavar="TIME", default="1d", show_default=True,
              help="Only minutes since TIME (ISO time, or 90s, 15m, 2h, 1d ago)")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="NDJSON (one JSON object a line)")
@pass_app
def ls_metrics(app: AppContext, socket: str | None, since: str, as_json: bool) -> None:
    """List the metrics kept for analysis, oldest minute first: per socket and minute (UTC)
    the calls started, those that failed, their latency (seconds from start to end: p50,
    p90, p99, max) and the queue depth sampled in that minute. Rolled up once a minute by
    the agent holding the scheduler's lease; kept 30 days. Needs the READ_CALL right (held
    on some processors only: the rows of their sockets)."""
    from shellflow.commands.output import print_rows
    from shellflow.model.metrics import COLUMNS, rows

    scope = app.principal.processors("READ_CALL")
    if not scope:
        app.authorize("READ_CALL", f"socket {socket}" if socket else "metrics")
    moment = parse_since(since)
    with app.reader() as conn:
        found = rows(conn, socket=socket, since=moment, processors=scope)
        if socket is not None and not found:
            _known_socket(conn, socket)
    print_rows(COLUMNS, found, as_json)


def _known_socket(conn: Reader, name: str) -> None:
    """NotFound (exit 3, with close names) for a socket neither stored nor in any kept row:
    a typing mistake, not an empty list."""
    from shellflow.errors import NotFound
    from shellflow.model.listing import names

    known = names(conn, "socket")
    if name not in known and not conn.query("SELECT 1 FROM metrics WHERE socket = ? LIMIT 1",
                                            (name,)):  # fmt: skip
        raise NotFound("socket", name, known)
