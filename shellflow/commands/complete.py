"""Dynamic values for shell completion: names from the configured database, fast and silent.

Each callback runs inside ``flow`` when a shell asks for candidates (``_FLOW_COMPLETE`` is
set; see :mod:`shellflow.commands.completion`). It resolves the database the command would
use (``--db``/``--ini`` already typed on the line, then the environment, the ini file and
the defaults), reads it through the light path (:mod:`shellflow.model.listing`: sqlite3 or
psycopg2, never SQLAlchemy), and returns the values starting with what was typed, filtered
by the query itself, each with a one-line description that zsh and fish show beside it.

Any failure (no database yet, a server down, a bad URL, a bug) yields no candidates: a
traceback must never reach the prompt. This module imports click and nothing else of
weight, since ``kinds.py`` and the other command modules import it to attach callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem

if TYPE_CHECKING:
    from shellflow.model.listing import Reader

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]

# At most this many candidates: a shell shows no more usefully, and the query stays cheap.
LIMIT = 200
RECENT_CALLS = 30
# How long a completion may wait for a PostgreSQL server that does not answer.
CONNECT_TIMEOUT = 2
# The states a call goes through (shellflow.model.calls.CALL_STATES, which imports
# SQLAlchemy; a unit test keeps the two equal).
CALL_STATES = (
    "pending", "received", "running", "finished", "failed", "retry", "revoked", "dead",
)  # fmt: skip

# For each kind: the view's columns a description is made of, and how.
_DESCRIBE: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], str]]] = {
    "queue": (("type", "network"), lambda r: _join(f"{r['type'] or 'direct'} queue", r["network"])),
    "processor": (
        ("module", "hostname", "status"),
        lambda r: _join(r["module"], r["hostname"] and f"on {r['hostname']}", r["status"]),
    ),
    "socket": (
        ("processor", "queue", "task"),
        lambda r: _join(f"{r['task']} of {r['processor']}", f"queue {r['queue']}"),
    ),
    "plug": (
        ("source", "target", "argument", "type"),
        lambda r: _join(
            f"{r['source']} -> {r['target']}", r["argument"] and f"argument {r['argument']}"
        ),
    ),
    "argument": (("task", "position"), lambda r: _join(f"of {r['task']}", r["position"])),
    "node": (("hostname", "cpus", "status"), lambda r: _join(r["hostname"], r["status"])),
    "agent": (("node", "status"), lambda r: _join(f"on node {r['node']}", r["status"])),
    "scheduler": (("strategy", "status"), lambda r: _join(r["strategy"], r["status"])),
    "deployment": (
        ("processor", "hostname"),
        lambda r: _join(f"{r['processor']} on {r['hostname']}"),
    ),
    "network": (("owner",), lambda r: _join(r["owner"] and f"owner {r['owner']}")),
    "user": (("email",), lambda r: _join(r["email"])),
    "role": (("owner",), lambda r: _join(r["owner"] and f"owner {r['owner']}")),
}


def _join(*parts: Any) -> str:
    return _shown(", ".join(str(p) for p in parts if p not in (None, "")))


def _shown(text: str) -> str:
    """A description on one line: zsh reads candidates three lines at a time and fish one
    line each (a tab starting the description), so a newline or tab in stored text would add
    a candidate of its own; every unprintable character becomes a space."""
    return "".join(c if c.isprintable() else " " for c in text)


def _offered(value: object, prefix: str) -> bool:
    """Whether a stored value may be a candidate: it extends what was typed and follows the
    name rule. A shell puts a candidate on the command line as it is (bash does not quote
    it), so a name stored before the rule holding ``$(...)``, a quote or a newline is never
    offered; completion prints nothing on stderr, so it is skipped silently."""
    from shellflow.model.checks import valid_name

    return isinstance(value, str) and value.startswith(prefix) and valid_name(value)


def _like(prefix: str) -> str:
    """A LIKE pattern matching values that start with ``prefix`` (``!`` escapes)."""
    return prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


def _db_url(ctx: click.Context) -> str:
    """The model database the command being completed would use."""
    from shellflow.config import load_settings

    params = ctx.find_root().params
    settings = load_settings({"db": params.get("db")}, ini=params.get("ini"), ini_must_exist=False)
    return settings.db


def _open(url: str) -> Reader:
    """A read-only connection of the light path, quick to give up on a silent server."""
    from shellflow.model.listing import Reader

    return Reader(url, connect_timeout=CONNECT_TIMEOUT)


def _query(
    ctx: click.Context, ask: Callable[[Reader], Iterable[CompletionItem]]
) -> list[CompletionItem]:
    """Run ``ask`` on the configured database; no candidates on any failure."""
    try:
        conn = _open(_db_url(ctx))
        try:
            return list(ask(conn))
        finally:
            conn.close()
    except Exception:  # shell completion must never print: no database, no candidates
        return []


def object_names(conn: Reader, kind: str, prefix: str) -> list[CompletionItem]:
    """Names of ``kind`` starting with ``prefix``, each with a short description."""
    from shellflow.model.views import VIEWS

    view = VIEWS[kind]
    keys, describe = _DESCRIBE.get(kind, ((), lambda _r: ""))
    exprs = dict((key, expr) for key, expr, _ in view.columns)
    columns = ", ".join(["o.name", *(exprs[k] for k in keys)])
    sql = (
        f"SELECT {columns} FROM {view.table} o {view.joins}"
        f" WHERE o.name LIKE ? ESCAPE '!' ORDER BY o.name LIMIT {LIMIT}"
    )
    items: dict[str, CompletionItem] = {}
    for record in conn.query(sql, [_like(prefix)]):
        name = record[0]
        # LIKE ignores case on SQLite; a shell only offers what extends the typed text.
        if not _offered(name, prefix) or name in items:
            continue
        row = dict(zip(keys, record[1:], strict=True))
        items[name] = CompletionItem(name, help=_shown(describe(row)) or None)
    return list(items.values())


def _moment(value: Any) -> str:
    """A stored time to the second, as text (SQLite keeps text, PostgreSQL datetimes)."""
    return str(value)[:19].replace("T", " ") if value else ""


def recent_calls(conn: Reader, prefix: str, column: str = "id") -> list[CompletionItem]:
    """Ids of the most recent calls (or of their flow runs) starting with ``prefix``."""
    if column == "id":
        sql = (
            "SELECT c.id, c.name, c.state, c.started FROM call c WHERE c.id LIKE ? ESCAPE '!'"
            f" ORDER BY c.started DESC LIMIT {RECENT_CALLS}"
        )
    else:  # flow runs: each run's most recent call, among the latest calls
        sql = (
            "SELECT c.tracking, MIN(c.name), MAX(c.state), MAX(c.started) FROM ("
            "SELECT tracking, name, state, started FROM call ORDER BY started DESC"
            f" LIMIT {LIMIT * 5}) c WHERE c.tracking LIKE ? ESCAPE '!' GROUP BY c.tracking"
            f" ORDER BY MAX(c.started) DESC LIMIT {RECENT_CALLS}"
        )
    items = []
    for value, name, state, started in conn.query(sql, [_like(prefix)]):
        if _offered(value, prefix):
            items.append(CompletionItem(value, help=_join(name, state, _moment(started))))
    return items


def names_of(kind: str) -> Completer:
    """A ``shell_complete`` callback offering the stored names of one kind of object."""

    def complete(
        ctx: click.Context, _param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        return _query(ctx, lambda conn: object_names(conn, kind, incomplete))

    complete.__name__ = f"complete_{kind}_names"
    return complete


def call_ids(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """A ``shell_complete`` callback offering the ids of recent calls, newest first."""
    return _query(ctx, lambda conn: recent_calls(conn, incomplete))


def flow_ids(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """A ``shell_complete`` callback offering the ids of recent flow runs, newest first."""
    return _query(ctx, lambda conn: recent_calls(conn, incomplete, column="tracking"))


def call_states(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """A ``shell_complete`` callback offering the states a call can be in."""
    return [CompletionItem(s) for s in CALL_STATES if s.startswith(incomplete)]
