"""Scheduled sockets (``--interval`` and ``--cron``) fired exactly once per due time.

Every agent runs a scheduler; none of them needs to be elected for firing to be exact:
each socket's next due time lives in a ``jobs`` row, and a scheduler fires only after it
moved that row from the due time it read to the next one with a compare-and-set UPDATE.
Two schedulers reading the same due time race on that UPDATE, one wins, one fires.
The winner records the due time's call ``pending`` in the same transaction and sends it
after the commit, again until the broker takes it (:mod:`shellflow.engine.fleet.outbox`):
a broker away across a due time delays that firing, and loses none.
Placement, which must not run twice at once, is done by the holder of a short lease kept
in the same table (see :mod:`shellflow.engine.fleet.placement`).
"""

from __future__ import annotations

import json
import logging
import math
import socket as pysocket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

import shellflow.model.tables  # noqa: F401  (registers every table)
from shellflow.config import Settings
from shellflow.engine.fleet import outbox
from shellflow.model.base import Base, new_id, utcnow
from shellflow.model.cron import next_time
from shellflow.model.db import get_engine

if TYPE_CHECKING:
    from shellflow.engine.transport.publisher import Transport

JOBS = Base.metadata.tables["jobs"]
SOCKETS = Base.metadata.tables["socket"]
LOG = Base.metadata.tables["log"]
LEASE_ID = "shellflow.scheduler.lease"
LEASE_SECONDS = 5.0
SWEEP_EVERY = 60.0  # seconds between two sweeps of abandoned joins
log = logging.getLogger(__name__)


class ScheduleError(Exception):
    """A schedule that cannot run; its text is the reason, on one line."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(" ".join(str(cause).split())[:300] or type(cause).__name__)


@dataclass(frozen=True)
class Schedule:
    socket_id: str
    socket: str
    interval: int | None
    cron: str | None
    task_id: str | None = None

    @property
    def job_id(self) -> str:
        return f"socket:{self.socket_id}"

    @property
    def spec(self) -> str:
        return f"every {self.interval}s" if self.interval is not None else f"cron {self.cron}"

    def next_after(self, moment: float) -> float:
        """The first due time strictly after ``moment`` (epoch seconds).

        :class:`ScheduleError` for a schedule that cannot run (an interval below one
        second, a cron line that never fires or that croniter cannot read: stored before
        the checks, or written straight into the database); the tick skips that socket.
        """
        try:
            if self.interval is not None:
                if self.interval < 1:
                    raise ValueError(f"interval {self.interval} is not a number of seconds >= 1")
                return moment + self.interval
            return next_time(str(self.cron), moment)
        except Exception as exc:
            raise ScheduleError(exc) from exc

    def beat_after(self, due: float, now: float) -> float:
        """The first due time after ``now`` on the beat of ``due`` (a due time reached): a
        socket that missed several fires once, then gets back on its beat, computed at
        once rather than one missed time after another (an interval of 1 s missed for a
        year is 31 million of them)."""
        following = self.next_after(due)
        if following > now:
            return following
        if self.interval is not None:
            step = float(self.interval)
            return following + (math.floor((now - following) / step) + 1) * step
        return self.next_after(now)


def _stored_spec(job: Any) -> str | None:
    """The schedule a job row was computed for (None if the row cannot be read)."""
    try:
        spec = json.loads(job.job_state).get("schedule")
    except (TypeError, ValueError, AttributeError):
        return None
    return spec if isinstance(spec, str) else None


def schedules(conn: Connection) -> list[Schedule]:
    rows = conn.execute(
        select(
            SOCKETS.c.id, SOCKETS.c.name, SOCKETS.c.interval, SOCKETS.c.cron, SOCKETS.c.task_id
        ).where((SOCKETS.c.interval.is_not(None)) | (SOCKETS.c.cron.is_not(None)))
    )
    return [Schedule(r.id, r.name, r.interval, r.cron, r.task_id) for r in rows]


class Scheduler:
    """One scheduler; ``tick`` fires what is due and says which sockets it fired.

    ``transport``: what carries the calls (the broker's, made on first use, by default; a
    test's :class:`shellflow.engine.transport.transports.stub.StubTransport`).
    """

    def __init__(
        self, settings: Settings, transport: Transport | None = None, name: str | None = None
    ) -> None:
        self.settings = settings
        self.engine = get_engine(settings.db)
        self._transport = transport
        self.name = name or f"{pysocket.gethostname()}:{id(self)}"
        self.next_sweep = 0.0
        self.next_rollup = 0.0  # shellflow.engine.fleet.rollup

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            from shellflow.engine.transport.publisher import transport_for

            self._transport = transport_for(self.settings)
        return self._transport

    def tick(self, now: float | None = None) -> list[str]:
        """Claim what is due (each due time's call recorded ``pending`` with its claim) and
        send it; the lease holder then sends again what the broker has not taken. Returns
        the sockets whose due time this scheduler claimed (each has its call recorded)."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            due = self._claim_due(conn, now)
        refused = False  # the broker just refused: sending again in this tick would too
        for claimed in due:
            try:
                refused |= outbox.deliver(self.settings, self.transport, claimed) == "failed"
            except Exception as exc:  # recorded, pending: resent by the lease holder
                refused = True
                log.warning("scheduled call of %s not sent: %s", claimed.socket, exc)
        if not refused and self.hold_lease(now):
            try:
                outbox.resend(self.settings, self.transport)
            except Exception as exc:  # the database away: next tick
                log.warning("scheduled calls not sent again: %s", exc)
        return [claimed.socket for claimed in due]

    def _claim_due(self, conn: Connection, now: float) -> list[outbox.Claimed]:
        current = {s.job_id: s for s in schedules(conn)}
        jobs = {r.id: r for r in conn.execute(select(JOBS).where(JOBS.c.id.like("socket:%")))}
        for job_id in set(jobs) - set(current):  # socket deleted or no longer scheduled
            conn.execute(JOBS.delete().where(JOBS.c.id == job_id))
        due: list[outbox.Claimed] = []
        for job_id, schedule in current.items():
            job = jobs.get(job_id)
            state = json.dumps({"socket": schedule.socket, "schedule": schedule.spec})
            # A schedule that cannot run raises ScheduleError before any statement: it is
            # skipped with the transaction intact, and the other sockets fire.
            try:
                if job is None or _stored_spec(job) != schedule.spec:
                    # New (or changed, or unreadable) schedule: first due time counted from now.
                    self._put(conn, job is not None, job_id, schedule.next_after(now), state)
                    continue
                if job.next_run_time is None or job.next_run_time > now:
                    continue  # not due, or skipped for an error until its schedule changes
                following = schedule.beat_after(job.next_run_time, now)
            except ScheduleError as exc:
                self._skip(conn, schedule, job, exc)
                continue
            claimed = conn.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id, JOBS.c.next_run_time == job.next_run_time)
                .values(next_run_time=following)
            ).rowcount
            if claimed == 1:  # this scheduler's due time: its call, in the same transaction
                call = outbox.record(
                    conn, schedule.socket_id, schedule.socket, schedule.task_id, job.next_run_time
                )
                if call is not None:
                    due.append(call)
        return due

    def _skip(self, conn: Connection, schedule: Schedule, job: Any, exc: ScheduleError) -> None:
        """Park a schedule that cannot run: its job row keeps no due time (so it is not
        retried every tick) and says why, until the socket's schedule changes. The one
        scheduler that parks it writes a line in the socket's log (``flow ls socket -n
        NAME`` shows it) and a warning in the agent's log."""
        reason = str(exc)
        state = json.dumps({"socket": schedule.socket, "schedule": schedule.spec,
                            "error": reason})  # fmt: skip
        if job is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(JOBS).values(id=schedule.job_id, next_run_time=None,
                                                     job_state=state))  # fmt: skip
            except IntegrityError:
                return  # another scheduler parked it
        else:
            parked = conn.execute(
                update(JOBS)
                .where(JOBS.c.id == schedule.job_id, JOBS.c.job_state == job.job_state)
                .values(next_run_time=None, job_state=state)
            ).rowcount
            if parked != 1:
                return
        moment = utcnow()
        text = f"{moment:%Y-%m-%dT%H:%M:%SZ} scheduler skipped {schedule.spec}: {reason}"
        conn.execute(insert(LOG).values(id=new_id(), created=moment, oid=schedule.socket_id,
                                        discriminator="socket", text=text,
                                        source="scheduler"))  # fmt: skip
        log.warning("socket %s not scheduled: %s", schedule.socket, reason)

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
    from shellflow.engine.fleet.rollup import rollup_if_leader

    scheduler = Scheduler(settings, **kw)
    while not stop():
        try:
            scheduler.tick()
            place_if_leader(scheduler)
            sweep_joins_if_leader(scheduler)
            rollup_if_leader(scheduler)
        except Exception as exc:
            log.warning("scheduler tick failed: %s", exc)
        time.sleep(period)
