"""Value checks the store makes before writing, so both databases answer alike.

PostgreSQL rejects text longer than its column while SQLite stores it whole, and neither
minds a blank name or one holding a tab (which would split a row of ``flow ls`` output).
Checking here turns all of these into the same usage error (exit 2) on either database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shellflow.errors import UsageError


def check_name(kind: str, name: str) -> None:
    if not name.strip() or not name.isprintable():
        raise UsageError(f"{kind} name {name!r} must be printable and not blank")


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


def check_values(kind: str, model: Any, values: Mapping[str, Any]) -> None:
    for key in ("name", "rename"):
        if values.get(key) is not None:
            check_name(kind, values[key])
    check_lengths(kind, model, values)


def check_cron(line: str) -> None:
    """A cron line croniter can run: five fields (six with seconds)."""
    from croniter import croniter

    if len(line.split()) not in (5, 6) or not croniter.is_valid(line):
        raise UsageError(f"cron line {line!r} is not valid; e.g. '*/5 * * * *'")
