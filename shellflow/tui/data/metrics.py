"""Each socket's recent throughput and queue depth, as the Network screen's sparklines show them.

The live feed (``shellflow.services.metrics``) gives, about once a second, each socket's
totals over its workers. :class:`Trends` turns them into two bounded series per socket, the
last :data:`SAMPLES` samples:

- throughput: calls finished per second, from the growth of the ``finished`` counter over
  the last :data:`SPAN` samples (a worker reports once a second, not in step with the
  samples: over one sample a count would swing between 0 and twice the rate);
- queue depth: the messages waiting in the socket's queue, as its workers last said; a
  sample without a depth (no worker says) is left out of the series, and the current
  figure is unknown.

UI-free: the screen's widgets read these series; tests feed rows by hand.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from shellflow.engine.records.metrics import Row

SAMPLES = 60  # points of a sparkline: a minute at one sample a second
SPAN = 5  # samples the throughput is measured over


@dataclass
class Trend:
    """One socket's series (bounded) and its current figures (None: not known yet)."""

    processor: str
    socket: str
    throughput: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    queued: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    workers: int = 0
    rate: float | None = None  # calls finished per second now
    depth: int | None = None  # messages waiting now
    counts: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=SPAN + 1))

    def add(self, row: Row, now: float) -> None:
        """One sample: ``row`` (this socket's totals) read at monotonic ``now``."""
        self.workers = row.workers
        if self.counts and row.finished < self.counts[-1][1]:
            self.counts.clear()  # a counter that went back (a worker's restart): start over
        self.counts.append((now, row.finished))
        then, before = self.counts[0]
        if now > then:
            self.rate = (row.finished - before) / (now - then)
            self.throughput.append(self.rate)
        self.depth = row.queued
        if row.queued is not None:
            self.queued.append(float(row.queued))


class Trends:
    """The trends of every socket heard of, by ``(processor, socket)``."""

    def __init__(self) -> None:
        self.by_socket: dict[tuple[str, str], Trend] = {}
        self.samples = 0  # samples taken with at least one socket reporting

    def add(self, rows: Iterable[Row], now: float) -> None:
        rows = list(rows)
        for row in rows:
            key = (row.processor, row.socket)
            trend = self.by_socket.get(key)
            if trend is None:
                trend = self.by_socket[key] = Trend(row.processor, row.socket)
            trend.add(row, now)
        if rows:
            self.samples += 1

    def get(self, processor: str, socket: str) -> Trend | None:
        return self.by_socket.get((processor, socket))

    def keys(self) -> list[tuple[str, str]]:
        return sorted(self.by_socket)


def rate_text(trend: Trend | None) -> str:
    """The current throughput for a narrow column; a dash when not known."""
    if trend is None or trend.rate is None:
        return "-"
    return f"{trend.rate:.1f}/s" if trend.rate < 100 else f"{trend.rate:.0f}/s"


def depth_text(trend: Trend | None) -> str:
    """The current queue depth; a dash when not known."""
    return "-" if trend is None or trend.depth is None else str(trend.depth)
