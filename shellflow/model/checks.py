"""Value checks the store makes before writing, so both databases answer alike.

PostgreSQL rejects text longer than its column while SQLite stores it whole, and neither
minds a blank name or one holding a tab, a newline or ``$(...)``, which would split a row of
``flow ls`` output or run as code in ``eval "$(flow shell aliases)"``. Checking here turns
all of these into the same usage error (exit 2) on either database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shellflow.errors import UsageError

# The one rule for the name of every object (socket, processor, queue, plug, node, agent,
# user, ...), on every path that creates or renames one: ``flow add``/``update --rename``,
# compose files, the Python object API and the decorators. A name is a command (``flow
# shell install``), an alias, a completion candidate and a graph label, so it holds nothing
# a shell, a terminal or a DOT/Mermaid file would read as syntax: ASCII letters, digits and
# ``_``, then also ``.`` (``pyfi.processors.sample.do_this``), ``-``, ``:`` and ``@``
# (deployments are named ``processor@node``; user names may be e-mail addresses). It never
# starts with ``-`` (an option), ``.`` (a hidden file, ``..``), ``:`` or ``@``.
NAME_LENGTH = 200
NAME_PATTERN = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.:@-]{{0,{NAME_LENGTH - 1}}}")
NAME_RULE = f"1 to {NAME_LENGTH} of A-Z a-z 0-9 _ . - : @, starting with a letter, digit or _"


def valid_name(name: object) -> bool:
    """Whether ``name`` follows the name rule (also used to skip names stored before it)."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def check_name(kind: str, name: object) -> None:
    """Refuse (exit 2, stating the rule) a name outside the one name rule."""
    if valid_name(name):
        return
    if isinstance(name, str) and len(name) > NAME_LENGTH:
        raise UsageError(
            f"{kind} name does not fit: at most {NAME_LENGTH} characters, got {len(name)}"
        )
    shown = repr(name) if not isinstance(name, str) or len(name) <= 60 else repr(name[:60]) + "..."
    raise UsageError(f"{kind} name {shown} is not allowed: a name is {NAME_RULE}")


def check_lengths(kind: str, model: Any, values: Mapping[str, Any]) -> None:
    """Each text value fits its column (``rename`` is measured against ``name``)."""
    columns = model.__table__.columns
    for key, value in values.items():
        column = columns.get("name" if key == "rename" else key)
        length = getattr(column.type, "length", None) if column is not None else None
        if isinstance(value, str) and length is not None and len(value) > length:
            raise UsageError(
                f"{kind} {key} does not fit: at most {length} characters, got {len(value)}"
            )


def check_integers(kind: str, model: Any, values: Mapping[str, Any]) -> None:
    """Each whole number fits its column: SQLite raises OverflowError past 64 bits and
    PostgreSQL a DataError past 32 (INTEGER) or 64 bits (BIGINT), each its own way."""
    from sqlalchemy import BigInteger, Integer

    columns = model.__table__.columns
    for key, value in values.items():
        column = columns.get(key)
        if column is None or isinstance(value, bool) or not isinstance(value, int):
            continue
        if not isinstance(column.type, Integer):
            continue
        bits = 63 if isinstance(column.type, BigInteger) else 31
        if not -(2**bits) <= value < 2**bits:
            raise UsageError(f"{kind} {key} {value} is out of range: at most {2**bits - 1}")


def check_values(kind: str, model: Any, values: Mapping[str, Any]) -> None:
    for key in ("name", "rename"):
        if values.get(key) is not None:
            check_name(kind, values[key])
    check_lengths(kind, model, values)
    check_integers(kind, model, values)


def check_cron(line: str) -> None:
    """A cron line croniter can run (five fields, six with seconds) that fires again within
    ``shellflow.model.cron.HORIZON_YEARS`` (``0 0 31 2 *`` is refused: it never fires)."""
    import time

    from croniter import croniter

    from shellflow.model.cron import NoNextTime, next_time

    if len(line.split()) not in (5, 6) or not croniter.is_valid(line):
        raise UsageError(f"cron line {line[:100]!r} is not valid; e.g. '*/5 * * * *'")
    try:
        next_time(line, time.time())
    except NoNextTime as exc:
        raise UsageError(str(exc)) from None
