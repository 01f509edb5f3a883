"""How long the metrics kept for analysis are kept: the ``metrics.retention`` setting.

Stored in the ``settings`` table (``flow config set metrics.retention 30d``), so every agent
reads one value: the lease holder's roll-up (``shellflow.engine.fleet.rollup``) prunes the
rows older than it. Unset (or unreadable): :data:`DEFAULT` days.
"""

from __future__ import annotations

import re
from typing import Any

from shellflow.errors import UsageError
from shellflow.model import setting_rows
from shellflow.model.metrics import RETENTION_DAYS as DEFAULT

KEY = "metrics.retention"
_FORM = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([hd]?)\s*")
_LOWEST, _HIGHEST = 1 / 24, 3650.0  # an hour, ten years


def days_of(text: str) -> float:
    """Days in ``30d``, ``12h`` or ``30`` (days); UsageError for anything else, below an
    hour or beyond ten years."""
    match = _FORM.fullmatch(text)
    if not match:
        raise UsageError(f"{KEY}: {text!r} is not a duration like 30d or 12h")
    days = float(match[1]) / (24 if match[2] == "h" else 1)
    if not _LOWEST <= days <= _HIGHEST:
        raise UsageError(f"{KEY}: {text!r} is not between 1h and 3650d")
    return days


def stored(conn: Any) -> str | None:
    """The stored text (an ORM session or a Core connection); None when unset."""
    return setting_rows.read(conn, KEY)


def days(conn: Any) -> float:
    """The retention in force, in days."""
    text = stored(conn)
    if text is None:
        return float(DEFAULT)
    try:
        return days_of(text)
    except UsageError:  # written by hand: the default rather than a roll-up failing
        return float(DEFAULT)


def save(session: Any, text: str, owner: str | None) -> str:
    """Store the retention (checked first); returns it as stored."""
    days_of(text)
    value = text.strip()
    setting_rows.write(session, KEY, value, owner)
    return value


def remove(session: Any) -> bool:
    """Remove the stored retention; True when there was one."""
    return setting_rows.remove(session, KEY)
