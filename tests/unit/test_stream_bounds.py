"""A stream keeps nothing per finished call: its bookkeeping stays within the window.

The collecting side of ``flow task run --stream`` (``shellflow.client.stream_results``) is
driven here in process with a burst that hands out outcomes as a Redis subscription would,
each published once and then read again (as ``Burst.look`` does after a quiet moment), and
some arriving before the sender's hand-over. Whatever the stream's length, the calls it
tracks, the outcomes it keeps for calls not handed over yet and the results held for
ordered output stay bounded by the window; only the summary's counters grow.
"""

from __future__ import annotations

import io
import threading
from typing import Any

from shellflow.client.stream import Stream
from shellflow.client.stream_input import HELD_BYTES, Call, Sender
from shellflow.client.stream_options import Options
from shellflow.engine.calls.bursts import Burst
from shellflow.engine.calls.result_meta import Outcome

JOBS = 4


class _Outcomes:
    """The burst's side: ids as a Burst makes them, outcomes queued for ``results``."""

    sequence = Burst.sequence

    def __init__(self) -> None:
        self.prefix = "0123abcd-0000-4000-8000-"
        self.queued: list[Outcome] = []

    def call_id(self, n: int) -> str:
        return f"{self.prefix}{n:012x}"

    def results(self, timeout: float) -> list[Outcome]:
        found, self.queued = self.queued, []
        return found


class _Sender:
    def __init__(self) -> None:
        self.room = threading.Semaphore(JOBS)

    def stop(self) -> None:
        pass


def _run(calls: int) -> dict[str, int]:
    """Stream ``calls`` calls through the collecting side; the largest size of each part."""
    out = io.BytesIO()
    stream = Stream(None, Options("s"), out, io.StringIO())
    burst = stream.burst = _Outcomes()
    sender = _Sender()
    largest = {"unfinished": 0, "finished": 0, "early": 0, "by_id": 0}
    for n in range(1, calls + 1):
        assert sender.room.acquire(blocking=False), "the window let a call through"
        call = Call(n, burst.call_id(n), None, 0.0)
        done = Outcome(call.call_id, "finished", n)
        if n % 3 == 0:  # ended before its hand-over: kept aside until then
            burst.queued.append(done)
            stream._collect_burst(sender, 0)
        stream._track(call, sender)
        if n % 3:
            burst.queued.append(done)
        burst.queued.append(done)  # and read again: a second outcome of a settled call
        if n % 2:  # collect every other call, so that the window fills now and then
            continue
        stream._collect_burst(sender, 0)
        stream._write_ready()
        for name in largest:
            largest[name] = max(largest[name], len(getattr(stream, name)))
    stream._collect_burst(sender, 0)
    stream._write_ready(final=True)
    assert out.getvalue().split() == [str(n).encode() for n in range(1, calls + 1)]
    assert stream.summary.ok == calls
    assert stream.held_bytes == 0 and not stream.finished
    return largest


def test_bookkeeping_stays_within_the_window() -> None:
    short, long = _run(200), _run(5000)
    assert long == short, (short, long)
    assert max(long.values()) <= JOBS


def test_a_second_outcome_of_a_settled_call_is_not_kept() -> None:
    stream = Stream(None, Options("s"), io.BytesIO(), io.StringIO())
    burst: Any = _Outcomes()
    stream.burst = burst
    sender = _Sender()
    sender.room.acquire()
    call = Call(1, burst.call_id(1), None, 0.0)
    stream._track(call, sender)
    burst.queued += [Outcome(call.call_id, "finished", 1)] * 2
    stream._collect_burst(sender, 0)
    assert stream.early == {} and stream.by_id == {} and stream.unfinished == {}
    # A call sent but not handed over yet keeps its outcome until it is.
    burst.queued.append(Outcome(burst.call_id(2), "finished", 2))
    stream._collect_burst(sender, 0)
    assert list(stream.early) == [burst.call_id(2)]


def test_results_held_behind_a_slow_call_are_bounded_in_bytes() -> None:
    """Ordered output: results that ended after a slower earlier call wait for it, held as
    the lines they write; past HELD_BYTES of them the sender sends no more calls."""
    stream = Stream(None, Options("s"), io.BytesIO(), io.StringIO())
    burst: Any = _Outcomes()
    stream.burst = burst
    sender = Sender(stream, io.BytesIO(), JOBS)
    big = "x" * (1 << 20)  # a 1 MiB result each
    for n in range(1, 80):
        stream._track(Call(n, burst.call_id(n), None, 0.0), sender)
    assert not sender.holding_full(80)
    burst.queued += [Outcome(burst.call_id(n), "finished", big) for n in range(2, 80)]
    stream._collect_burst(sender, 0)  # every call but the first has ended
    stream._write_ready()
    assert stream.held_bytes == 78 * ((1 << 20) + 1) > HELD_BYTES
    assert sender.holding_full(80)  # the window is open (80 - 1 < 4096), the bytes are not
    burst.queued.append(Outcome(burst.call_id(1), "finished", "first"))
    stream._collect_burst(sender, 0)
    stream._write_ready()
    assert stream.held_bytes == 0 and not sender.holding_full(80)
    assert stream.out.getvalue().startswith(b"first\n" + big.encode() + b"\n")  # type: ignore[attr-defined]
