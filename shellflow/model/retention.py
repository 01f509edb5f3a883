"""How long the metrics kept for analysis are kept: the ``metrics.retention`` setting.

Stored in the ``settings`` table (``flow config set metrics.retention 30d``), so every agent
reads one value: the lease holder's roll-up (``shellflow.engine.fleet.rollup``) prunes the
rows older than it. Unset (or unreadable): :data:`DEFAULT` days.
"""

from __future__ import annotations

import re
from typing import Any

from shellflow.errors import UsageError
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
    from sqlalchemy import select

    from shellflow.model.infra import Setting

    table = Setting.__table__
    value = conn.execute(select(table.c.value).where(table.c.name == KEY)).scalar()
    return None if value is None else str(value)


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
    from sqlalchemy import select

    import shellflow.model.tables  # noqa: F401  (every mapper known before the first query)
    from shellflow.model.base import utcnow
    from shellflow.model.infra import Setting

    days_of(text)
    value = text.strip()
    row = session.scalar(select(Setting).where(Setting.name == KEY))
    if row is None:
        session.add(Setting(name=KEY, value=value, owner=owner))
    else:
        row.value, row.lastupdated = value, utcnow()
    session.flush()
    return value


def remove(session: Any) -> bool:
    """Remove the stored retention; True when there was one."""
    from sqlalchemy import delete

    import shellflow.model.tables  # noqa: F401
    from shellflow.model.infra import Setting

    done = session.execute(delete(Setting).where(Setting.name == KEY))
    return bool(done.rowcount)
