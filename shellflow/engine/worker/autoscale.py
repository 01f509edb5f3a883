"""Autoscaling: a processor's pool grows while calls wait in its queues and shrinks when idle.

A processor with ``--min-workers N --max-workers M`` (``shellflow.model.scale``) gets a
worker whose prefork pool starts with N processes and is resized by :class:`QueueDepthScaler`,
Celery's ``Autoscaler`` deciding by the depth of the processor's queues instead of by the
messages the worker already holds. Every :data:`CHECK_EVERY` seconds (and never more often)
it counts the calls **waiting**: the messages ready in the broker for the processor's
sockets (a passive ``queue_declare``: RabbitMQ's message count, the Redis lists' length)
plus those the worker has received and not started, and for how long calls have been
waiting (:class:`Backlog`). Then :func:`decide`:

- **grow** when at least :data:`GROW_AT` calls wait (the depth threshold), or when calls
  have been waiting for :data:`WAIT_AT` seconds (the wait-time threshold: a short queue of
  long calls that the pool does not drain): to as many processes as the running and
  waiting calls need, at most the ceiling;
- **shrink** once no call has waited for :data:`IDLE_AFTER` seconds: to the processes that
  are running a call, at least the floor. Billiard retires only processes that run no call
  (``Pool.shrink``), and the scaler shrinks only when every call the pool was handed has
  been taken up by its process, so a retired process never holds a call: none is lost or
  run twice. Its records were spooled when its last call ended
  (``shellflow.engine.records.recorder``).
- The ceiling is ``min(max_workers, the node's CPUs, the worker's -c)``, the floor
  ``min_workers`` (never above the ceiling); the pool never leaves them. A worker serving a
  *share* of a processor spread over several nodes keeps its part of both bounds
  (:mod:`shellflow.engine.worker.share_rows`): every share reads the same queues, so when
  one share is at its ceiling and calls still wait, the others grow too, and together they
  never exceed ``--max-workers``.

Each change is published on the ``global`` live channel (and ``<processor>.scale``) as a
message of channel ``scale``, state ``grow`` or ``shrink``, with ``data`` holding ``from``,
``to``, ``reason``, ``hostname`` and ``pid``; and the processor row gets
``workers_current``, ``workers_desired`` and ``scale_reason`` (``flow ls processor --json``)
when they change, so at most once a second (a share: its deployment row, and the processor
row the sums of its shares). Scaling events are live only (not stored).
The bounds are read again every :data:`BOUNDS_EVERY` seconds, so ``flow update processor
--max-workers`` applies without a restart.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket as pysocket
from dataclasses import dataclass
from datetime import UTC, datetime
from time import monotonic
from typing import Any

from celery.worker import state
from celery.worker.autoscale import Autoscaler

from shellflow import forks
from shellflow.config import Settings
from shellflow.engine.records.events import GLOBAL, carries_live_events, redis_client
from shellflow.engine.worker.share_rows import bounds, report
from shellflow.urls import is_redis

CHECK_EVERY = 1.0  # seconds between two decisions
GROW_AT = 2  # calls waiting that make the pool grow (the depth threshold)
WAIT_AT = 2.0  # seconds calls have waited that make the pool grow (the wait-time threshold)
IDLE_AFTER = 10.0  # seconds without a waiting call before the pool shrinks
BOUNDS_EVERY = 5.0  # seconds between two reads of the processor's bounds
log = logging.getLogger("shellflow.worker")


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str


class Backlog:
    """How long calls have been waiting, as the checks see it: since the first check that
    found a call waiting after one that found none.

    Why this measure: the oldest waiting call's own age is not cheaply known on both
    deployments. RabbitMQ's passive declare gives a count only; reading a message to see
    its time would mark it redelivered; Celery's protocol-2 message carries no time sent;
    ``pending`` call records exist only for some calls (``--async``, streams) and a query a
    second per worker would load the database. This costs nothing (the depth is read
    anyway), is bounded (one timestamp) and reads the same on Redis and RabbitMQ. With
    queues drained in order it is an upper bound of the oldest call's wait, to within one
    check: every call waiting now came after the last check that saw none."""

    def __init__(self) -> None:
        self.since: float | None = None

    def seen(self, waiting: int, now: float) -> float:
        """Note a check; the seconds calls have been waiting (0 when none wait)."""
        if waiting <= 0:
            self.since = None
            return 0.0
        if self.since is None:
            self.since = now
        return now - self.since


def decide(
    *, current: int, busy: int, waiting: int, idle_for: float, minimum: int, maximum: int,
    cpus: int, waited: float = 0.0,
) -> Decision:  # fmt: skip
    """How many pool processes there should be, and why (``waited``: seconds calls have been
    waiting, see :class:`Backlog`)."""
    ceiling = max(1, min(maximum, cpus))
    floor = max(1, min(minimum, ceiling))
    limit = "--max-workers" if maximum <= cpus else "the node's CPUs"
    if current > ceiling:
        return Decision(max(ceiling, busy), f"over the limit of {ceiling} ({limit})")
    if current < floor:
        return Decision(floor, f"under --min-workers {floor}")
    if waiting >= GROW_AT or (waiting and waited >= WAIT_AT):
        need = min(ceiling, busy + waiting)
        if need > current:
            why = f"{waiting} calls waiting" if waiting >= GROW_AT else (
                f"{waiting} calls waiting for {waited:.0f} s")  # fmt: skip
            return Decision(need, why)
        if current >= ceiling:
            return Decision(current, f"{waiting} calls waiting; at most {ceiling} ({limit})")
        return Decision(current, f"{waiting} calls waiting, {current} processes enough")
    if not waiting and idle_for >= IDLE_AFTER and current > max(floor, busy):
        return Decision(max(floor, busy), f"no call waiting for {IDLE_AFTER:g} s")
    return Decision(current, "steady")


class QueueDepthScaler(Autoscaler):
    """Celery's autoscaler, deciding by the depth of the processor's queues."""

    settings: Settings
    processor: str
    queues: list[str]
    deployment: str | None = None  # the share it serves (--deployment), if any
    concurrency: int = 0  # the worker's -c: its share's CPUs

    def __init__(
        self, pool: Any, max_concurrency: int, min_concurrency: int = 0, worker: Any = None,
        keepalive: float = CHECK_EVERY, mutex: Any = None,
    ) -> None:  # fmt: skip
        # ``keepalive`` is also how often Celery's event loop calls maybe_scale: every second
        super().__init__(pool, max_concurrency, min_concurrency, worker, CHECK_EVERY, mutex)
        self.cpus = min(os.cpu_count() or 1, self.concurrency or os.cpu_count() or 1)
        self.backlog = Backlog()
        self._checked = self._bounds_read = monotonic()
        self._waited = monotonic()  # when a call last waited
        self._channel: Any = None
        self._connection: Any = None
        self._reported: tuple[int, int, str] | None = None
        forks.at_fork(self._forget)

    def _forget(self) -> None:  # a forked pool process keeps no connection of the parent's
        self._channel = self._connection = None

    def waiting_in_broker(self) -> int:
        try:
            if self._channel is None:
                self._connection = self.worker.app.connection_for_read()
                self._channel = self._connection.default_channel
            return sum(self._depth(name) for name in self.queues)
        except Exception as exc:  # decide on what the worker holds; connect again next time
            log.warning("autoscaling: queue depth unknown: %s: %s", type(exc).__name__, exc)
            if self._connection is not None:
                with contextlib.suppress(Exception):  # a broken connection
                    self._connection.close()
            self._channel = self._connection = None
            return 0

    def _depth(self, name: str) -> int:
        from kombu.exceptions import ChannelError

        try:
            return int(self._channel.queue_declare(queue=name, passive=True).message_count)
        except ChannelError:  # kombu's Redis transport: an empty queue has no list at all
            if is_redis(self.settings.broker):
                return 0
            raise

    def _maybe_scale(self, req: Any = None) -> bool:
        now = monotonic()
        if now - self._checked < CHECK_EVERY:
            return False
        self._checked = now
        if now - self._bounds_read >= BOUNDS_EVERY:
            self._bounds_read = now
            try:
                found = bounds(self.settings, self.processor, self.deployment)
            except Exception:  # the database is away: keep the bounds known
                found = None
            if found is not None:
                self.min_concurrency, self.max_concurrency = found
        busy = len(state.active_requests)
        held = max(0, len(state.reserved_requests) - busy)
        waiting = self.waiting_in_broker() + held
        if waiting:
            self._waited = now
        waited = self.backlog.seen(waiting, now)
        current = self.processes
        decision = decide(
            current=current, busy=busy, waiting=waiting, idle_for=now - self._waited,
            minimum=self.min_concurrency, maximum=self.max_concurrency, cpus=self.cpus,
            waited=waited,
        )  # fmt: skip
        changed = False
        if decision.desired > current:
            self._grow(decision.desired - current)
            changed = True
        elif decision.desired < current and self._all_taken_up():
            self._shrink(current - decision.desired)
            changed = True
        if changed:
            self.publish(current, decision)
        self.report(self.processes if changed else current, decision)
        return changed

    def _all_taken_up(self) -> bool:
        """Whether every call handed to the pool was taken up by a process: a call written
        to a process that has not started it yet would go with the process."""
        cache = getattr(getattr(self.pool, "_pool", None), "_cache", None) or {}
        return all(job.worker_pids() for job in list(cache.values()))

    def publish(self, current: int, decision: Decision) -> None:
        state_name = "grow" if decision.desired > current else "shrink"
        log.warning("autoscaling %s: %d -> %d processes (%s)", self.processor, current,
                    decision.desired, decision.reason)  # fmt: skip
        if not carries_live_events(self.settings.pubsub):
            return
        message = {
            "channel": "scale", "id": f"scale/{os.getpid()}/{monotonic():.3f}",
            "state": state_name, "date": datetime.now(UTC).isoformat(), "room": self.processor,
            "socket": None, "call": None, "flow": None,
            "data": {"from": current, "to": decision.desired, "reason": decision.reason,
                     "hostname": pysocket.gethostname(), "pid": os.getpid()},
        }  # fmt: skip
        try:
            client = redis_client(self.settings.pubsub)
            payload = json.dumps(message)
            client.publish(GLOBAL, payload)
            client.publish(f"{self.processor}.scale", payload)
            client.close()
        except Exception as exc:  # a live viewer missing a message must never stop the worker
            log.warning("autoscaling event not published: %s: %s", type(exc).__name__, exc)

    def report(self, current: int, decision: Decision) -> None:
        """workers_current/desired and scale_reason, when they change: in the processor row,
        or in its deployment's and the processor's sums (a share; ``share_rows``)."""
        values = (current, decision.desired, decision.reason)
        if values == self._reported:
            return
        try:
            report(self.settings, self.processor, self.deployment, values)
            self._reported = values
        except Exception as exc:  # reported again at the next decision
            log.warning("autoscaling state not recorded: %s: %s", type(exc).__name__, exc)


def worker_options(
    app: Any, settings: Settings, processor: str, queues: list[str], *,
    deployment: str | None = None, concurrency: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """``app.Worker`` options for the processor: ``autoscale`` and this scaler when it has
    bounds (``concurrency`` then only caps them), nothing otherwise. ``deployment``: the
    share it serves, whose part of the bounds it keeps."""
    from celery import signals

    try:
        found = bounds(settings, processor, deployment)
    except Exception as exc:  # a database not yet upgraded (migration 0011): a fixed pool
        log.warning("autoscaling off: bounds unreadable: %s: %s", type(exc).__name__, exc)
        return {}
    if found is None:
        return {}
    minimum, maximum = found
    scaler = type(
        "Scaler", (QueueDepthScaler,),
        {"settings": settings, "processor": processor, "queues": list(queues),
         "deployment": deployment, "concurrency": concurrency},
    )  # fmt: skip
    app.conf.worker_autoscaler = scaler  # Celery accepts the class itself as well as a path

    def stopped(**_: Any) -> None:  # what it reported no longer runs
        try:
            report(settings, processor, deployment, (None, None, "worker stopped"))
        except Exception as exc:
            log.warning("autoscaling state not cleared: %s: %s", type(exc).__name__, exc)

    signals.worker_shutdown.connect(stopped, weak=False)
    return {"autoscale": (maximum, minimum)}
