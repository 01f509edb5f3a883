"""Metrics kept for analysis: one row per socket and minute, read by ``flow ls metrics``.

Written by the roll-up (:mod:`shellflow.engine.fleet.rollup`, run once a minute by the agent
holding the scheduler's lease) from the call records; read here through the light path
(:class:`shellflow.model.listing.Reader`, no SQLAlchemy). A row is keyed by the socket's
name and the minute (UTC, seconds zero) in which its calls started: ``calls`` started then,
``failures`` of them ended ``failed`` or ``dead``, the latency percentiles and maximum
(seconds from start to end) over those that ended, and ``queue_depth`` the messages waiting
in the socket's queue when the roll-up sampled it in that minute (None: not sampled).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shellflow.model.listing import Reader

COLUMNS = ["socket", "minute", "calls", "failures", "p50", "p90", "p99", "max", "queue_depth"]
RETENTION_DAYS = 30  # rows older than this are pruned by the roll-up
LIMIT = 100_000  # rows ``flow ls metrics`` prints at most


def _moment(raw: Any) -> str:
    moment = datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


def rows(
    conn: Reader,
    socket: str | None = None,
    since: datetime | None = None,
    processors: Collection[str] | None = None,
    limit: int = LIMIT,
) -> list[dict[str, Any]]:
    """The kept rows, oldest minute first (``processors``: of these processors' sockets
    only, as ``flow ls calls`` scopes calls; None: of all)."""
    from shellflow.model.dialects import sql_time
    from shellflow.model.history import on_processors

    where, params = [], []
    if socket is not None:
        where.append("c.socket = ?")
        params.append(socket)
    if since is not None:
        where.append("c.minute >= ?")
        params.append(sql_time(conn.dialect, since))
    if processors is not None:
        condition, names = on_processors(processors)
        where.append(condition)
        params.extend(names)
    sql = "SELECT " + ", ".join(f"c.{c}" for c in COLUMNS) + " FROM metrics c"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY c.minute, c.socket LIMIT {int(limit)}"
    found = []
    for values in conn.query(sql, params):
        row = dict(zip(COLUMNS, values, strict=True))
        row["minute"] = _moment(row["minute"])
        for key in ("p50", "p90", "p99", "max"):
            if row[key] is not None:
                row[key] = round(float(row[key]), 6)
        found.append(row)
    return found
