"""The worker's real-time metrics: counted on every call, published once a second.

**Per call: counters only.** Calls run in the pool's processes; each has its own slot in
memory shared with the main process (made before the pool forks): three counters per
socket (started, finished, failed) and a ring of the last
:data:`~shellflow.engine.records.metrics.RING` calls' ``(ended, latency)``. A call adds one
to ``started``, reads the clock twice and writes its ring entry: no lock (each slot has one
writer, the pool process of that index; a process that replaces a lost one reuses its
slot), no system call beyond the clock, nothing sent.

**Once a second: one message per socket.** A thread of the main process (started once the
pool is up) adds up the slots, asks the broker how many messages wait in the sockets'
queues (one passive declare per queue on RabbitMQ, one pipelined LLEN on Redis, on one
kept connection, at most once a second and with a 2 s timeout) and publishes each
socket's figures on ``<processor>.metrics`` (:mod:`shellflow.engine.records.metrics`). A
broker or pub/sub outage costs the viewers their figures, never a call.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from multiprocessing.sharedctypes import RawArray
from typing import Any

from shellflow.engine.records.events import carries_live_events, redis_client
from shellflow.engine.records.metrics import CHANNEL, RING, WINDOW, message, recent, summary
from shellflow.redact import mask_text, mask_url
from shellflow.urls import is_redis, socket_path, transport_url

log = logging.getLogger(__name__)
INTERVAL = 1.0


def _slot() -> int:
    """This process's slot: 0 for the main process, 1 + the pool index for a pool process."""
    from billiard.process import current_process

    index = getattr(current_process(), "index", None)
    return 0 if index is None else int(index) + 1


def _view(array: Any, kind: str) -> Any:
    """The shared array as a memoryview of ``kind`` ("q" or "d") items."""
    return memoryview(array).cast("B").cast(kind)  # type: ignore[call-overload]


class Meter:
    """Counters and latency rings of ``sockets`` sockets for ``slots`` processes, shared."""

    def __init__(self, sockets: int, slots: int, ring: int = RING) -> None:
        self.sockets, self.slots, self.ring = sockets, max(1, slots), ring
        self.counts: Any = RawArray(ctypes.c_int64, self.slots * sockets * 3)
        self.ended: Any = RawArray(ctypes.c_double, self.slots * sockets * ring)
        self.took: Any = RawArray(ctypes.c_double, self.slots * sockets * ring)
        self.next: Any = RawArray(ctypes.c_int64, self.slots * sockets)

    def timed(self, index: int, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` counted as socket ``index``'s calls."""
        # Memoryviews of the shared arrays: indexing one costs a third of a ctypes array's.
        counts, nexts = _view(self.counts, "q"), _view(self.next, "q")
        ended, took = _view(self.ended, "d"), _view(self.took, "d")
        sockets, slots, ring = self.sockets, self.slots, self.ring
        clock = time.monotonic
        mine: list[int] = []  # (slot * sockets + index), found on the first call

        @functools.wraps(function)
        def counted(*args: Any, **kwargs: Any) -> Any:
            if not mine:
                mine.append((_slot() % slots) * sockets + index)
            cell = mine[0]
            counts[cell * 3] += 1
            start = clock()
            outcome = 2
            try:
                result = function(*args, **kwargs)
                outcome = 1
                return result
            finally:
                end = clock()
                counts[cell * 3 + outcome] += 1
                n = nexts[cell]
                nexts[cell] = n + 1
                at = cell * ring + n % ring
                ended[at] = end
                took[at] = end - start

        return counted

    def snapshot(
        self, index: int, now: float, window: float = WINDOW
    ) -> tuple[list[int], list[float]]:
        """Socket ``index``'s counters (summed over the slots) and its recent latencies."""
        totals = [0, 0, 0]
        latencies: list[float] = []
        ring = self.ring
        for slot in range(self.slots):
            cell = slot * self.sockets + index
            for i in range(3):
                totals[i] += int(self.counts[cell * 3 + i])
            used = min(int(self.next[cell]), ring)  # entries written: an idle slot costs nothing
            if used:
                base = cell * ring
                ended = self.ended[base : base + used]
                took = self.took[base : base + used]
                latencies += recent(zip(ended, took, strict=True), now, window)
        return totals, latencies


def active() -> dict[str, int]:
    """Requests the worker's pool runs now, by task (socket) name: Celery's own record in
    the main process, so a call whose pool process was lost or terminated leaves it."""
    from celery.worker import state

    counts: dict[str, int] = {}
    for request in list(state.active_requests):
        name = str(getattr(request, "name", ""))
        counts[name] = counts.get(name, 0) + 1
    return counts


class Depths:
    """Messages waiting in queues, asked on one kept connection (made again after a failure)."""

    def __init__(self, broker: str, queues: Sequence[str], timeout: float = 2.0) -> None:
        self.broker, self.queues, self.timeout = broker, list(queues), timeout
        self._client: Any = None
        self._channel: Any = None

    def read(self) -> dict[str, int]:
        try:
            return self._redis() if is_redis(self.broker) else self._amqp()
        except Exception:
            self.close()
            raise

    def _redis(self) -> dict[str, int]:
        path = socket_path(self.broker)
        if path is not None and not path.exists():
            return dict.fromkeys(self.queues, 0)
        if self._client is None:
            self._client = redis_client(self.broker)
        pipe = self._client.pipeline(transaction=False)
        for name in self.queues:
            pipe.llen(name)
        return {q: int(n) for q, n in zip(self.queues, pipe.execute(), strict=True)}

    def _amqp(self) -> dict[str, int]:
        if self._client is None:
            from kombu import Connection

            self._client = Connection(transport_url(self.broker), connect_timeout=self.timeout)
            self._client.connect()
        depths: dict[str, int] = {}
        for name in self.queues:
            if self._channel is None:
                self._channel = self._client.channel()
            try:
                depths[name] = int(self._channel.queue_declare(name, passive=True).message_count)
            except self._client.channel_errors:  # not declared (404): the channel closes
                depths[name] = 0
                self._channel = None
        return depths

    def close(self) -> None:
        for thing in (self._channel, self._client):
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.close()
        self._client = self._channel = None


class Reporter:
    """The main process's thread publishing each socket's figures once a second."""

    def __init__(
        self, meter: Meter, pubsub: str, broker: str, room: str, sockets: Sequence[str],
        worker: str, agent: str | None,
    ) -> None:  # fmt: skip
        self.meter, self.pubsub, self.room, self.sockets = meter, pubsub, room, list(sockets)
        self.worker, self.agent = worker, agent
        self.depths = Depths(broker, self.sockets)
        self.channel = f"{room}.{CHANNEL}".encode()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.seq = 0
        self._client: Any = None
        self._said: set[str] = set()  # problems logged once
        self._ends: deque[tuple[float, list[int]]] = deque()  # (when, calls ended per socket)

    def start(self) -> None:
        if not carries_live_events(self.pubsub) or self.thread is not None:
            return
        # The rate's baseline: no call had ended when the pool started.
        self._ends.append((time.monotonic(), [0] * len(self.sockets)))
        self.thread = threading.Thread(target=self._run, name="shellflow-metrics", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        self.depths.close()

    def _run(self) -> None:
        while not self.stopping.wait(INTERVAL):
            self.publish_once()

    def _warn(self, what: str, exc: Exception) -> None:
        if what not in self._said:
            self._said.add(what)
            where = mask_url(self.pubsub if what == "pub/sub" else self.depths.broker)
            why = mask_text(f"{type(exc).__name__}: {exc}")
            log.warning("metrics: %s unavailable at %s: %s", what, where, why)

    def publish_once(self) -> list[bytes]:
        """Publish (and return) one message per socket."""
        now = time.monotonic()
        try:
            depths: dict[str, int] | None = self.depths.read()
            self._said.discard("queue depth")
        except Exception as exc:
            depths = None
            self._warn("queue depth", exc)
        snapshots = [self.meter.snapshot(i, now) for i in range(len(self.sockets))]
        running = active()
        ends = [counts[1] + counts[2] for counts, _ in snapshots]
        self._ends.append((now, ends))
        while len(self._ends) > 1 and now - self._ends[0][0] > WINDOW:
            self._ends.popleft()
        then, before = self._ends[0]
        span = max(now - then, INTERVAL)
        date = datetime.now(UTC).isoformat()
        out = []
        for i, (socket, (counts, latencies)) in enumerate(
            zip(self.sockets, snapshots, strict=True)
        ):
            queued = None if depths is None else depths.get(socket)
            rate = (ends[i] - before[i]) / span
            data = summary(counts, latencies, queued, rate, running.get(socket, 0))
            self.seq += 1
            out.append(message(self.room, socket, self.worker, self.agent, self.seq, date, data))
        try:
            if self._client is None:
                self._client = redis_client(self.pubsub)
            pipe = self._client.pipeline(transaction=False)
            for payload in out:
                pipe.publish(self.channel, payload)
            pipe.execute()
            self._said.discard("pub/sub")
        except Exception as exc:
            self._client = None
            self._warn("pub/sub", exc)
        return out


def install(reporter: Reporter) -> None:
    """Start the reporter once the pool is up; stop it when the worker stops."""
    from celery import signals

    signals.worker_ready.connect(lambda **_: reporter.start(), weak=False)
    signals.worker_shutdown.connect(lambda **_: reporter.stop(), weak=False)
