"""Scheduled sockets (``--interval`` and ``--cron``) fired exactly once per due time.

Every agent runs a scheduler; none of them needs to be elected for firing to be exact:
each socket's next due time lives in a ``jobs`` row, and a scheduler fires only after it
moved that row from the due time it read to the next one with a compare-and-set UPDATE.
Two schedulers reading the same due time race on that UPDATE, one wins, one fires.
Placement, which must not run twice at once, is done by the holder of a short lease kept
in the same table (see :mod:`shellflow.engine.fleet.placement`).
"""

from __future__ import annotations

import json
import logging
import socket as pysocket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

import shellflow.model.tables  # noqa: F401  (registers every table)
from shellflow.config import Settings
from shellflow.model.base import Base
from shellflow.model.db import get_engine

JOBS = Base.metadata.tables["jobs"]
SOCKETS = Base.metadata.tables["socket"]
LEASE_ID = "shellflow.scheduler.lease"
LEASE_SECONDS = 5.0
SWEEP_EVERY = 60.0  # seconds between two sweeps of abandoned joins
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    socket_id: str
    socket: str
    interval: int | None
    cron: str | None

    @property
    def job_id(self) -> str:
        return f"socket:{self.socket_id}"

    @property
    def spec(self) -> str:
        return f"every {self.interval}s" if self.interval else f"cron {self.cron}"

    def next_after(self, moment: float) -> float:
        """The first due time strictly after ``moment`` (epoch seconds)."""
        if self.interval:
            return moment + self.interval
        from datetime import UTC, datetime

        from croniter import croniter

        start = datetime.fromtimestamp(moment, UTC)
        return float(croniter(self.cron, start).get_next(float))


def schedules(conn: Connection) -> list[Schedule]:
    rows = conn.execute(
        select(SOCKETS.c.id, SOCKETS.c.name, SOCKETS.c.interval, SOCKETS.c.cron).where(
            (SOCKETS.c.interval.is_not(None)) | (SOCKETS.c.cron.is_not(None))
        )
    )
    return [Schedule(r.id, r.name, r.interval, r.cron) for r in rows]


Fire = Callable[[Schedule], None]


class Scheduler:
    """One scheduler; ``tick`` fires what is due and says which sockets it fired."""

    def __init__(self, settings: Settings, fire: Fire | None = None, name: str | None = None):
        self.settings = settings
        self.engine = get_engine(settings.db)
        self.fire = fire or self._send
        self.name = name or f"{pysocket.gethostname()}:{id(self)}"
        self.next_sweep = 0.0

    def _send(self, schedule: Schedule) -> None:
        from shellflow.engine.calls.sender import send

        send(self.settings, schedule.socket, [], {})

    def tick(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        fired: list[str] = []
        with self.engine.begin() as conn:
            due = self._claim_due(conn, now)
        for schedule in due:
            try:
                self.fire(schedule)
                fired.append(schedule.socket)
            except Exception as exc:  # one socket failing must not stop the others
                log.warning("scheduled call of %s failed: %s", schedule.socket, exc)
        return fired

    def _claim_due(self, conn: Connection, now: float) -> list[Schedule]:
        current = {s.job_id: s for s in schedules(conn)}
        jobs = {r.id: r for r in conn.execute(select(JOBS).where(JOBS.c.id.like("socket:%")))}
        for job_id in set(jobs) - set(current):  # socket deleted or no longer scheduled
            conn.execute(JOBS.delete().where(JOBS.c.id == job_id))
        due: list[Schedule] = []
        for job_id, schedule in current.items():
            job = jobs.get(job_id)
            state = json.dumps({"socket": schedule.socket, "schedule": schedule.spec})
            if job is None or json.loads(job.job_state).get("schedule") != schedule.spec:
                # New (or changed) schedule: first due time counted from now.
                self._put(conn, job is not None, job_id, schedule.next_after(now), state)
                continue
            if job.next_run_time is None or job.next_run_time > now:
                continue
            following = schedule.next_after(job.next_run_time)
            while following <= now:  # missed several: fire once, then get back on the beat
                following = schedule.next_after(following)
            claimed = conn.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id, JOBS.c.next_run_time == job.next_run_time)
                .values(next_run_time=following)
            ).rowcount
            if claimed == 1:
                due.append(schedule)
        return due

    @staticmethod
    def _put(conn: Connection, exists: bool, job_id: str, due: float, state: str) -> None:
        if exists:
            conn.execute(
                update(JOBS).where(JOBS.c.id == job_id).values(next_run_time=due, job_state=state)
            )
        else:  # another scheduler may insert the same row first: then it keeps its own
            try:
                with conn.begin_nested():
                    conn.execute(insert(JOBS).values(id=job_id, next_run_time=due, job_state=state))
            except IntegrityError:
                pass

    def hold_lease(self, now: float | None = None) -> bool:
        """Take or renew the placement lease; True while this scheduler holds it."""
        now = time.time() if now is None else now
        mine = json.dumps({"holder": self.name})
        with self.engine.begin() as conn:
            row = conn.execute(select(JOBS).where(JOBS.c.id == LEASE_ID)).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(JOBS).values(
                                id=LEASE_ID, next_run_time=now + LEASE_SECONDS, job_state=mine
                            )
                        )
                    return True
                except IntegrityError:
                    return False
            taken = conn.execute(
                update(JOBS)
                .where(JOBS.c.id == LEASE_ID)
                .where((JOBS.c.job_state == mine) | (JOBS.c.next_run_time < now))
                .values(next_run_time=now + LEASE_SECONDS, job_state=mine)
            ).rowcount
            return bool(taken == 1)


def strategy_of(conn: Connection) -> str:
    """The placement strategy: the first scheduler row's, else BALANCED."""
    table = Base.metadata.tables["scheduler"]
    row = conn.execute(select(table.c.strategy).order_by(table.c.name).limit(1)).first()
    return str(row[0]) if row and row[0] else "BALANCED"


def place_if_leader(scheduler: Scheduler, now: float | None = None) -> list[str]:
    """Place processors without a host, if this scheduler holds the lease."""
    if not scheduler.hold_lease(now):
        return []
    from sqlalchemy.orm import Session

    from shellflow.engine.fleet.placement import place

    with Session(scheduler.engine) as session, session.begin():
        changes = place(session, strategy_of(session.connection()))
    for change in changes:
        log.info("placement: %s", change)
    return changes


def sweep_joins_if_leader(scheduler: Scheduler, now: float | None = None) -> int:
    """Every SWEEP_EVERY seconds, the lease holder forgets abandoned joins (``joins.sweep``)."""
    now = time.time() if now is None else now
    if now < scheduler.next_sweep or not scheduler.hold_lease(now):
        return 0
    from shellflow.engine.dataflow.joins import join_ttl, sweep

    scheduler.next_sweep = now + SWEEP_EVERY
    ttl = join_ttl()
    removed = sweep(scheduler.engine, ttl)
    for flow, target in removed:
        log.warning("join of socket %s in flow run %s waited over %g s: forgotten",
                    target, flow, ttl)  # fmt: skip
    return len(removed)


def run(settings: Settings, stop: Callable[[], bool], period: float = 0.5, **kw: Any) -> None:
    """Tick until ``stop()`` says so (every agent runs this in a thread)."""
    scheduler = Scheduler(settings, **kw)
    while not stop():
        try:
            scheduler.tick()
            place_if_leader(scheduler)
            sweep_joins_if_leader(scheduler)
        except Exception as exc:
            log.warning("scheduler tick failed: %s", exc)
        time.sleep(period)
