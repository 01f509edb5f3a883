"""The metrics roll-up: per-socket, per-minute aggregates of the call records, kept for
analysis (``flow ls metrics``; the rows are described in :mod:`shellflow.model.metrics`).

Run once a minute by the agent holding the scheduler's lease (:func:`rollup_if_leader`,
called from the scheduler's loop). Each run rolls up again the last :data:`REDO_MINUTES`
whole minutes, so calls recorded late (a worker's spool drained after a database outage)
or ending after their minute are counted, and upserts one row per socket and minute: a
minute rolled up twice keeps one row, the same one. Then it samples each socket's queue
depth once (bounded: :data:`MAX_SOCKETS` queues, a broker that does not answer leaves it
empty) and prunes the rows older than the retention (``flow config set metrics.retention
30d``, :mod:`shellflow.model.retention`).

One SQL path for SQLite and PostgreSQL: per minute, one ``GROUP BY`` counts calls and
failures and takes the maximum latency exactly (on ``ix_call_started``), and the latency
percentiles are computed here over a bounded sample: every ended call of the minute when
there are at most :data:`SAMPLE`, else at most :data:`SAMPLE` of each socket, taken in id
order (ids are random, so the sample is unbiased and the same on every run).
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, delete, select, text

import shellflow.model.tables  # noqa: F401  (registers every table)
from shellflow.model import retention
from shellflow.model.base import Base
from shellflow.model.dialects import seconds_between
from shellflow.model.metrics import RETENTION_DAYS

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from shellflow.engine.fleet.scheduler import Scheduler

METRICS = Base.metadata.tables["metrics"]
SOCKETS = Base.metadata.tables["socket"]
EVERY = 60.0  # seconds between two roll-ups
REDO_MINUTES = 10  # whole minutes rolled up again by each run
SAMPLE = 20_000  # ended calls (a minute, a socket) over which the percentiles are computed
MAX_SOCKETS = 1_000  # queues whose depth one run samples
FAILED = ("failed", "dead")
ENDED = ("finished", "failed", "dead")
log = logging.getLogger(__name__)


def minute_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def percentile(ordered: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of sorted values, to the millisecond (None for none;
    SQLite's ``julianday`` differences carry some microseconds of noise)."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(fraction * len(ordered)) - 1)], 3)


def _aggregate(conn: Connection, start: datetime) -> dict[str, dict[str, Any]]:
    """Each socket's row for the minute starting at ``start`` (sockets with calls only)."""
    latency = seconds_between(conn.dialect.name, "started", "finished")
    ended = "state IN ('finished', 'failed', 'dead') AND finished IS NOT NULL"
    times = Base.metadata.tables["call"].c.started.type
    window = {"a": start, "b": start + timedelta(minutes=1)}

    def query(sql: str, **more: Any) -> list[Any]:
        statement = text(sql).bindparams(bindparam("a", type_=times), bindparam("b", type_=times))
        return list(conn.execute(statement, {**window, **more}).all())

    found: dict[str, dict[str, Any]] = {}
    for name, socket_id, calls, failures, done, longest in query(
        "SELECT name, MIN(socket_id), COUNT(*),"
        " SUM(CASE WHEN state IN ('failed', 'dead') THEN 1 ELSE 0 END),"
        f" SUM(CASE WHEN {ended} THEN 1 ELSE 0 END), MAX(CASE WHEN {ended} THEN {latency} END)"
        " FROM call WHERE started >= :a AND started < :b GROUP BY name"
    ):
        top = None if longest is None else round(float(longest), 3)
        found[name] = {"socket": name, "socket_id": socket_id, "minute": start,
                       "calls": int(calls), "failures": int(failures or 0), "max": top,
                       "lat": [], "ended": int(done or 0)}  # fmt: skip
    chosen = f" AND {ended} ORDER BY id LIMIT {SAMPLE}"
    within = f"SELECT name, {latency} FROM call WHERE started >= :a AND started < :b"
    if sum(row["ended"] for row in found.values()) <= SAMPLE:  # all of them, at once
        sample = query(within + chosen)
    else:  # each socket's own sample (``ix_call_name_started``): a busy one crowds no other
        sample = [got for name, row in found.items() if row["ended"]
                  for got in query(within + " AND name = :n" + chosen, n=name)]  # fmt: skip
    for name, seconds in sample:
        if name in found and seconds is not None:
            found[name]["lat"].append(max(0.0, float(seconds)))
    for row in found.values():
        ordered = sorted(row.pop("lat"))
        del row["ended"]
        row.update(p50=percentile(ordered, 0.50), p90=percentile(ordered, 0.90),
                   p99=percentile(ordered, 0.99))  # fmt: skip
    return found


def _upsert(conn: Connection, rows: list[dict[str, Any]], keep_depth: bool) -> None:
    """Insert or replace each (socket, minute) row. ``keep_depth``: the rows carry no
    depth, and one sampled before is kept; else the rows carry only a depth."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(METRICS)
    changed: tuple[str, ...] = ("queue_depth",)
    if keep_depth:
        changed = ("socket_id", "calls", "failures", "p50", "p90", "p99", "max")
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["socket", "minute"],
            set_={c: statement.excluded[c] for c in changed},
        ),
        rows,
    )


def roll_up(engine: Engine, now: datetime | None = None, broker: str | None = None) -> int:
    """Roll up the last :data:`REDO_MINUTES` whole minutes before ``now``; sample the queue
    depths into ``now``'s minute if ``broker`` is given; prune the rows older than the
    retention (``metrics.retention``). The rows written."""
    now = now or datetime.now(UTC)
    current = minute_of(now)
    written = 0
    with engine.begin() as conn:
        for back in range(REDO_MINUTES, 0, -1):
            rows = list(_aggregate(conn, current - timedelta(minutes=back)).values())
            _upsert(conn, rows, keep_depth=True)
            written += len(rows)
    if broker:
        written += sample_depths(engine, broker, current)
    with engine.connect() as conn:
        kept_days = retention.days(conn)
    prune(engine, now, kept_days)
    return written


def sample_depths(engine: Engine, broker: str, minute: datetime) -> int:
    """Each socket's queue depth, written into ``minute``'s row (a socket whose queue is
    empty and that has no row then gets none). The rows written."""
    from shellflow.engine.transport.purge import waiting

    with engine.connect() as conn:
        sockets = conn.execute(
            select(SOCKETS.c.name, SOCKETS.c.id).order_by(SOCKETS.c.name).limit(MAX_SOCKETS)
        ).all()
        have = set(conn.execute(
            select(METRICS.c.socket).where(METRICS.c.minute == minute)
        ).scalars())  # fmt: skip
    if not sockets:
        return 0
    try:
        depths = waiting(broker, [name for name, _ in sockets], timeout=5.0)
    except Exception as exc:  # the broker away: no depth this minute
        log.warning("queue depths not sampled: %s", exc)
        return 0
    rows = [
        {"socket": name, "socket_id": socket_id, "minute": minute, "calls": 0, "failures": 0,
         "queue_depth": depths.get(name, 0)}
        for name, socket_id in sockets
        if depths.get(name, 0) or name in have
    ]  # fmt: skip
    with engine.begin() as conn:
        _upsert(conn, rows, keep_depth=False)
    return len(rows)


def prune(engine: Engine, now: datetime | None = None, days: float = RETENTION_DAYS) -> int:
    """Delete the rows older than ``days``; how many."""
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        gone = conn.execute(delete(METRICS).where(METRICS.c.minute < now - timedelta(days=days)))
    return int(gone.rowcount or 0)


def rollup_if_leader(scheduler: Scheduler, now: float | None = None) -> int:
    """Every :data:`EVERY` seconds, the lease holder rolls up the metrics."""
    now = time.time() if now is None else now
    if now < scheduler.next_rollup:
        return 0
    scheduler.next_rollup = now + EVERY  # the others too: no lease asked for every tick
    if not scheduler.hold_lease(now):
        return 0
    moment = datetime.fromtimestamp(now, UTC)
    return roll_up(scheduler.engine, moment, scheduler.settings.broker)
