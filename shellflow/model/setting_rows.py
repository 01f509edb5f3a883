"""One named value in the ``settings`` table: read, written (replacing any) and removed.

Settings that every agent and client of a database must agree on (``repos.allow``,
``metrics.retention``) live there rather than in each machine's ini file; each has its own
module that checks and parses its text, and all of them store it through these three.
"""

from __future__ import annotations

from typing import Any


def read(conn: Any, name: str) -> str | None:
    """The stored text (an ORM session or a Core connection); None when unset."""
    from sqlalchemy import select

    from shellflow.model.infra import Setting

    table = Setting.__table__
    value = conn.execute(select(table.c.value).where(table.c.name == name)).scalar()
    return None if value is None else str(value)


def write(session: Any, name: str, value: str, owner: str | None) -> None:
    """Store ``value`` under ``name``, replacing any (the caller checked it)."""
    from sqlalchemy import select

    import shellflow.model.tables  # noqa: F401  (every mapper known before the first query)
    from shellflow.model.base import utcnow
    from shellflow.model.infra import Setting

    row = session.scalar(select(Setting).where(Setting.name == name))
    if row is None:
        session.add(Setting(name=name, value=value, owner=owner))
    else:
        row.value, row.lastupdated = value, utcnow()
    session.flush()


def remove(session: Any, name: str) -> bool:
    """Remove the value stored under ``name``; True when there was one."""
    from sqlalchemy import delete

    import shellflow.model.tables  # noqa: F401
    from shellflow.model.infra import Setting

    done = session.execute(delete(Setting).where(Setting.name == name))
    return bool(done.rowcount)
