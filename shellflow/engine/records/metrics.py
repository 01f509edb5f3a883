"""Real-time metrics: what a worker publishes about its sockets, and how readers add it up.

Every worker publishes, about once a second, one message per socket on its processor's
``<processor>.metrics`` channel (never on ``global``: a listener of every event would get
a message per socket per second). The message has the events' fields (``channel`` is
``metrics``, ``state`` is ``metrics``, ``room`` the processor, ``socket`` the socket),
plus ``worker`` (the worker's Celery node name, one per process), ``agent`` (the agent
that started it, ``PID-START``, or null) and ``data``:

=========  ==============================================================================
started    calls this worker started since it started (a retried call counts once)
finished   of these, the calls that returned
failed     of these, the calls that ended with an error (dead-lettered ones too)
running    calls running now: the worker's active requests (a call whose pool process was
           lost or terminated is not counted, though it counts as started)
queued     messages waiting in the socket's queue, as the broker said at most a second
           ago (a passive declare on RabbitMQ, LLEN on Redis); null when it could not say
rate       calls ended per second over the last minute (up to 60 s since the worker started)
p50, p99   latency of the calls ended in the last minute, in seconds (nearest rank; over at
           most the last :data:`RING` calls of each pool process); null with no such call
=========  ==============================================================================

:class:`Totals` adds up the messages of several workers (``flow top``, the agent's
Prometheus endpoint): counters are summed, the queue depth is the largest report (all
workers read the same queue), the latencies the slowest worker's, and a worker silent for
:data:`STALE` seconds is dropped, its counters kept in the total so that it never goes back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

CHANNEL = "metrics"
WINDOW = 60.0  # seconds of calls the latencies and the rate cover
RING = 1024  # latencies kept per socket and pool process
STALE = 5.0  # a worker not heard from for this long has stopped
COUNTERS = ("started", "finished", "failed")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of ``values``, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def recent(
    samples: Iterable[tuple[float, float]], now: float, window: float = WINDOW
) -> list[float]:
    """The latencies of ``(ended, latency)`` samples that ended within ``window`` of now
    (a ring's unused slots, ended at 0, are too old)."""
    return [latency for ended, latency in samples if ended > 0 and now - ended <= window]


class Ring:
    """A bounded ring of ``(ended, latency)`` samples: the last ``size`` ones are kept.

    The worker keeps the same layout in shared memory (``shellflow.engine.worker.metrics``);
    this one is for one process, and for tests of the arithmetic."""

    def __init__(self, size: int = RING) -> None:
        self.size = size
        self.samples: list[tuple[float, float]] = [(0.0, 0.0)] * size
        self.count = 0

    def add(self, ended: float, latency: float) -> None:
        self.samples[self.count % self.size] = (ended, latency)
        self.count += 1

    def quantiles(self, now: float, window: float = WINDOW) -> tuple[float | None, float | None]:
        values = recent(self.samples, now, window)
        return percentile(values, 50), percentile(values, 99)


def summary(
    counts: Sequence[int], latencies: Sequence[float], queued: int | None, rate: float,
    running: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A socket's ``data``: its counters (started, finished, failed), depth and latencies;
    ``running`` unless given: started - finished - failed."""
    started, finished, failed = (int(c) for c in counts)
    if running is None:
        running = max(0, started - finished - failed)
    return {
        "started": started, "finished": finished, "failed": failed,
        "running": running, "queued": queued,
        "rate": round(rate, 3), "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
    }  # fmt: skip


def message(
    room: str, socket: str, worker: str, agent: str | None, seq: int, date: str,
    data: dict[str, Any],
) -> bytes:  # fmt: skip
    event = {
        "channel": CHANNEL, "id": f"{worker}/{seq}", "state": CHANNEL, "date": date,
        "room": room, "socket": socket, "worker": worker, "agent": agent, "data": data,
    }  # fmt: skip
    return json.dumps(event, separators=(",", ":")).encode()


def is_metrics(event: dict[str, Any]) -> bool:
    return (
        event.get("channel") == CHANNEL
        and isinstance(event.get("data"), dict)
        and isinstance(event.get("worker"), str)
        and isinstance(event.get("socket"), str)
    )


@dataclass
class Row:
    """One socket's total over the workers reporting it."""

    processor: str
    socket: str
    workers: int = 0
    started: int = 0
    finished: int = 0
    failed: int = 0
    running: int = 0
    queued: int | None = None
    rate: float = 0.0
    p50: float | None = None
    p99: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _larger(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass
class Totals:
    """The latest message of each (worker, socket), added up per socket."""

    stale: float = STALE
    latest: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = field(default_factory=dict)
    retired: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def add(self, event: dict[str, Any], now: float) -> bool:
        """Keep ``event`` (a metrics message) as its worker's latest; False if it is not one."""
        if not is_metrics(event):
            return False
        key = (str(event.get("room")), event["socket"], event["worker"])
        self.latest[key] = (now, event["data"])
        return True

    def expire(self, now: float) -> None:
        """Drop the workers silent for ``stale`` seconds; their counters stay in the total."""
        for key, (seen, data) in list(self.latest.items()):
            if now - seen > self.stale:
                del self.latest[key]
                kept = self.retired.setdefault(key[:2], [0, 0, 0])
                for i, name in enumerate(COUNTERS):
                    kept[i] += int(_number(data.get(name)) or 0)

    def rows(self, now: float) -> list[Row]:
        """Each socket's total, by throughput (calls ended per second), busiest first."""
        self.expire(now)
        rows: dict[tuple[str, str], Row] = {}
        for (room, socket), kept in self.retired.items():
            row = rows.setdefault((room, socket), Row(room, socket))
            row.started, row.finished, row.failed = (a + b for a, b in zip(
                (row.started, row.finished, row.failed), kept, strict=True))  # fmt: skip
        for (room, socket, _), (_, data) in self.latest.items():
            row = rows.setdefault((room, socket), Row(room, socket))
            row.workers += 1
            row.started += int(_number(data.get("started")) or 0)
            row.finished += int(_number(data.get("finished")) or 0)
            row.failed += int(_number(data.get("failed")) or 0)
            row.running += int(_number(data.get("running")) or 0)
            row.rate = round(row.rate + (_number(data.get("rate")) or 0.0), 3)
            queued = _number(data.get("queued"))
            if queued is not None:
                row.queued = int(max(row.queued or 0, queued))
            row.p50 = _larger(row.p50, _number(data.get("p50")))
            row.p99 = _larger(row.p99, _number(data.get("p99")))
        return sorted(rows.values(), key=lambda r: (-r.rate, -(r.finished + r.failed),
                                                     r.processor, r.socket))  # fmt: skip
