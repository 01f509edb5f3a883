"""Streaming calls: each input record one call of a socket, results in input order.

``flow task run --stream`` is a shell filter in the manner of GNU parallel ``--keep-order``:
records are read from stdin (lines, NUL-delimited with ``-0``, or NDJSON with ``--json``) by
a reader thread, so results are written as soon as they are ready even while the input is
slow; up to ``jobs`` calls are unfinished at any time; each result is written and flushed
as it becomes the next in input order (or at once, unordered).

Why it is fast: one Celery app, producer pool and result consumer serve every call (see
``shellflow.engine.calls.sender``), the socket's route is read from the database once (and again
only when its cache expires), and results are collected by the result backend's native
consumer (Redis pub/sub): each finished call fulfils a promise, so no call costs a poll or
a database read, and nothing waits on one slow call while others finish.

Failures: a failed call writes one line on stderr (its record number, call id and the
remote error) and nothing on stdout; the ``--halt`` policy says when to stop. A reader that
goes away (``| head -1``) ends the stream quietly: the calls not yet started are cancelled.
This module holds no click: the command (``shellflow.commands.task``) parses and prints.

It runs the parts, each in a module of its own: :mod:`~shellflow.client.stream_options`
(what a stream is asked to do, how it ended), :mod:`~shellflow.client.stream_input`
(records, their values and the sender thread with its window),
:mod:`~shellflow.client.stream_results` (collecting results, time-outs, cancelling) and
:mod:`~shellflow.client.stream_output` (ordered writing and progress). The names callers
use are importable from here.
"""

from __future__ import annotations

import contextlib
import os
import queue
import time
import uuid
from typing import IO, Any

from shellflow.client.stream_input import (
    CHUNK,
    EOF,
    HELD_AT_LEAST,
    HELD_BYTES,
    HELD_PER_JOB,
    BadRecord,
    Call,
    Sender,
    read_records,
)
from shellflow.client.stream_options import JOBS_PER_CPU, PROGRESS_EVERY, Halt, Options, Summary
from shellflow.client.stream_outage import GaveUp, Outage
from shellflow.client.stream_output import OrderedOutput
from shellflow.client.stream_records import PendingRecorder
from shellflow.client.stream_results import LOOK_AFTER, ResultCollection
from shellflow.errors import NotFound, ServiceUnavailable

RECORDS_GRACE = 10.0  # seconds the pending records may still take once the stream has ended

__all__ = [
    "CHUNK", "HELD_AT_LEAST", "HELD_BYTES", "HELD_PER_JOB", "JOBS_PER_CPU", "LOOK_AFTER",
    "PROGRESS_EVERY", "BadRecord", "Halt", "Options", "Stream", "Summary", "read_records",
    "run_stream",
]  # fmt: skip


class Stream(ResultCollection, OrderedOutput):
    """One streaming run: a sender thread sends, this thread collects and writes results."""

    def __init__(self, settings: Any, options: Options, out: IO[bytes], err: IO[str]) -> None:
        self.settings = settings
        self.options = options
        self.out = out
        self.err = err
        self.summary = Summary()
        self.unfinished: dict[int, Call] = {}
        self.finished: dict[int, Call] = {}  # ended, waiting for their turn (ordered)
        self.next_out = 1  # the record number written next (ordered)
        self.held_bytes = 0  # the bytes of the results in ``finished``
        self.ready: list[Call] = []  # ended since the last look, fed by the consumer
        self.native = False
        self.burst: Any = None  # an engine.calls.bursts.Burst when the backend is Redis
        self.by_id: dict[str, Call] = {}
        self.early: dict[str, Any] = {}  # outcomes of calls not handed over yet
        self.handed = 0  # the burst's sequence number of the last call handed over
        self._last_result = 0.0
        self._last_progress = 0.0
        # One flow run for the whole stream unless it joins one: 'flow ls calls --flow ID'.
        self.flow = options.flow or str(uuid.uuid4())
        self.records: Any = None  # a stream_records.PendingRecorder
        self.outage = Outage(settings, options.reconnect_timeout, self._say)

    def run(self, source: IO[bytes]) -> Summary:
        from shellflow.engine.calls.bursts import Burst, socket_concurrency
        from shellflow.engine.calls.sender import app_for, route_for

        options = self.options
        route = route_for(self.settings, options.socket)  # NotFound before reading any input
        jobs = options.jobs or JOBS_PER_CPU * socket_concurrency(self.settings, options.socket)
        burst = Burst(self.settings, options.socket)
        if burst.native:
            burst.start()
            self.outage.recovered("result backend")  # reached: from now on, a loss is waited for
            self.burst = burst
        # Celery keeps one backend per thread: the sender's (which its calls' results
        # subscribe through) is the one to drain, so it is taken from the first call.
        backend = app_for(self.settings).backend
        self.native = hasattr(backend, "result_consumer") and getattr(backend, "is_async", False)
        self.records = PendingRecorder(self.settings.db, route, self._say)
        self.records.start()
        sender = Sender(self, source, jobs)
        started = time.monotonic()
        sender.start()
        sending = True
        try:
            while sending or self.unfinished:
                # New calls from the sender: wait for one only when nothing else can happen.
                block = not self.unfinished
                while sending:
                    try:
                        item = sender.sent.get(timeout=PROGRESS_EVERY) if block else (
                            sender.sent.get_nowait()
                        )  # fmt: skip
                    except queue.Empty:
                        break
                    block = False
                    if item is EOF:
                        sending = False
                    elif isinstance(item, BadRecord):
                        self.summary.bad_record = item
                        sending = False
                    elif isinstance(item, Exception):
                        raise item
                    else:
                        self._track(item, sender)
                if self.unfinished:
                    self._collect_through_outages(sender)
                self._expire(sender)
                self._write_ready()
                self._show_progress(started)
                if self.summary.halted and sending:
                    sender.stop()
                    sending = False
                    if options.halt.when == "now":
                        self._cancel_unfinished("Cancelled: the stream halted")
            self._write_ready(final=True)
        except GaveUp as exc:
            sender.stop()  # the unfinished calls are left to run: each is recorded pending
            raise self._unaccounted(exc, sender) from None
        except BrokenPipeError:
            self.summary.reader_gone = True
            sender.stop()
            self._cancel_unfinished("Cancelled: the stream's reader went away")
        except NotFound as exc:  # the socket went away under the stream (deleted, renamed)
            sender.stop()
            self._cancel_unfinished(f"cancelled: {exc.message}", report=True)
            with contextlib.suppress(OSError):
                self._write_ready(final=True)  # one line for each call it had sent
            raise
        except BaseException:
            sender.stop()
            self._cancel_unfinished("Cancelled: the stream was interrupted")
            raise
        finally:
            self.summary.seconds = time.monotonic() - started
            self._clear_progress()
            self.records.close(RECORDS_GRACE)
            burst.close()
        return self.summary

    def _collect_through_outages(self, sender: Sender) -> None:
        """Collect results; a lost result backend is waited for (``stream_outage``), then
        subscribed to again and every unfinished call's stored result read."""
        if self.burst is None:
            self._collect(sender, self._patience())
            return
        try:
            if self.burst.pubsub is None:
                self.burst.start()
                self._look_at_all(sender)
            self._collect(sender, self._patience())
        except ServiceUnavailable as exc:
            self.burst.close()
            self.outage.failed(exc)
            return
        self.outage.recovered("result backend")

    def _look_at_all(self, sender: Sender) -> None:
        """After the result backend came back: the stored result of every unfinished call,
        then the records of those still unfinished (a result that could not be stored
        while the backend was away is in the call's record all the same)."""
        for outcome in self.burst.look([c.call_id for c in self.unfinished.values()]):
            call = self.by_id.get(outcome.call_id)
            if call is not None:
                self._ended(call, outcome, sender)
        from shellflow.engine.calls.outcomes import recorded_ended

        try:
            ended = recorded_ended(self.settings, [c.call_id for c in self.unfinished.values()])
        except ServiceUnavailable:  # the database is away too: the results may yet come
            return
        for outcome in ended:
            call = self.by_id.get(outcome.call_id)
            if call is not None:
                self._ended(call, outcome, sender)

    def _unaccounted(self, exc: GaveUp, sender: Sender) -> GaveUp:
        """The stream gives up: how many sent calls it leaves without a result, and where."""
        count = len(self.unfinished)
        while True:
            try:
                item = sender.sent.get_nowait()
            except queue.Empty:
                break
            count += isinstance(item, Call)
        exc.message = (f"{exc.message}; {count} calls unaccounted for; see flow ls calls"
                       f" --flow {self.flow} -u")  # fmt: skip
        exc.args = (exc.message,)
        return exc

    def _say(self, line: str) -> None:
        """One line on stderr (under the progress line, which is drawn again)."""
        self._clear_progress()
        self.err.write(line + "\n")
        self.err.flush()


def run_stream(settings: Any, options: Options, source: IO[bytes] | None = None) -> Summary:
    """Run a stream from stdin to stdout; the summary says how it ended."""
    import sys

    summary = Stream(settings, options, sys.stdout.buffer, sys.stderr).run(
        source if source is not None else sys.stdin.buffer
    )
    if summary.reader_gone:
        _silence_stdout()
    return summary


def _silence_stdout() -> None:
    """The reader went away: point stdout at /dev/null so the final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
    except OSError:  # best effort: with no descriptor free, stdout stays as it was
        pass
