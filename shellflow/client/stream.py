"""Streaming calls: each input record one call of a socket, results in input order.

``flow task run --stream`` is a shell filter in the manner of GNU parallel ``--keep-order``:
records are read from stdin (lines, NUL-delimited with ``-0``, or NDJSON with ``--json``) by
a reader thread, so results are written as soon as they are ready even while the input is
slow; up to ``jobs`` calls are unfinished at any time; each result is written and flushed
as it becomes the next in input order (or at once, unordered).

Why it is fast: one Celery app, producer pool and result consumer serve every call (see
``shellflow.engine.client``), the socket's route is read from the database once (and again
only when its cache expires), and results are collected by the result backend's native
consumer (Redis pub/sub): each finished call fulfils a promise, so no call costs a poll or
a database read, and nothing waits on one slow call while others finish.

Failures: a failed call writes one line on stderr (its record number, call id and the
remote error) and nothing on stdout; the ``--halt`` policy says when to stop. A reader that
goes away (``| head -1``) ends the stream quietly: the calls not yet started are cancelled.
This module holds no click: the command (``shellflow.commands.task``) parses and prints.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from shellflow.client.values import format_result, parse_value
from shellflow.errors import ExitCode, UsageError

CHUNK = 1 << 16
HELD_PER_JOB = 64  # results kept waiting for an earlier one (ordered), per job
HELD_AT_LEAST = 4096
PROGRESS_EVERY = 0.25  # seconds between progress line updates (stderr on a TTY only)
# Default calls in flight per CPU of the socket's workers: a worker process that finishes a
# call finds its next ones queued instead of idling while the result travels back and the
# next call is sent (measured: 1 per CPU ran at about half the throughput of 4).
JOBS_PER_CPU = 4
LOOK_AFTER = 1.0  # seconds without a result before the stored results are read


class BadRecord(UsageError):
    """An input record that cannot be a call's input (``--json`` and not JSON)."""


@dataclass(frozen=True)
class Halt:
    """When to stop after failures, as GNU parallel's ``--halt``.

    ``never``: run every record. ``soon,fail=N``: after N failed calls start no more, let
    the unfinished ones end and write them. ``now,fail=N``: after N failed calls cancel the
    unfinished ones and stop at once.
    """

    when: str = "never"
    fails: int = 0

    @classmethod
    def parse(cls, text: str) -> Halt:
        when, _, rest = text.partition(",")
        if when == "never" and not rest:
            return cls()
        if when in ("soon", "now") and rest.startswith("fail="):
            count = rest[len("fail=") :]
            if count.isdigit() and int(count) > 0:
                return cls(when, int(count))
        raise UsageError(f"--halt {text!r}: expected never, soon,fail=N or now,fail=N")

    def reached(self, failed: int) -> bool:
        return self.when != "never" and failed >= self.fails


@dataclass
class Options:
    socket: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    jobs: int | None = None  # None: JOBS_PER_CPU times the socket's total concurrency
    nul: bool = False
    json_lines: bool = False
    ordered: bool = True
    halt: Halt = field(default_factory=Halt)
    timeout: float | None = None  # seconds from a call's send to its result
    flow: str | None = None
    parent: str | None = None
    progress: bool = False


@dataclass
class Summary:
    calls: int = 0
    ok: int = 0
    failed: int = 0
    timed_out: int = 0
    seconds: float = 0.0
    halted: bool = False
    reader_gone: bool = False
    bad_record: BadRecord | None = None

    def line(self) -> str:
        line = f"{self.calls} calls, {self.ok} ok, {self.failed} failed in {self.seconds:.2f} s"
        if self.timed_out:
            line += f" ({self.timed_out} timed out)"
        if self.halted:
            line += "; halted"
        return line

    @property
    def exit_code(self) -> ExitCode:
        if self.reader_gone:
            return ExitCode.OK
        if self.bad_record is not None:
            return ExitCode.USAGE
        if self.failed > self.timed_out:
            return ExitCode.CALL_FAILED
        if self.timed_out:
            return ExitCode.TIMED_OUT
        return ExitCode.OK


def read_records(source: IO[bytes], nul: bool) -> Iterator[bytes]:
    """Records of a byte stream: lines without their newline, or NUL-terminated records."""
    if not nul:
        for line in source:
            yield line[:-1] if line.endswith(b"\n") else line
        return
    read = getattr(source, "read1", source.read)  # what is there: a pipe may be slow
    rest = b""
    while chunk := read(CHUNK):
        parts = (rest + chunk).split(b"\0")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


_EOF = object()


@dataclass
class _Call:
    number: int  # 1-based input record number
    call_id: str
    handle: Any
    sent: float
    state: str = "pending"  # pending | ok | failed | timedout
    value: Any = None


class _Sender(threading.Thread):
    """Reads the records and sends their calls while the window has room.

    Sending on a thread of its own lets a publish's wait for the broker overlap with the
    main thread's work on results (both mostly wait on sockets, outside the GIL). Each sent
    call (or the end of input, or an error) is handed to the main thread through ``sent``.
    """

    def __init__(self, stream: Stream, source: IO[bytes], jobs: int) -> None:
        super().__init__(name="shellflow-stream-sender", daemon=True)
        self.stream = stream
        self.source = source
        self.room = threading.Semaphore(jobs)  # released as calls finish
        self.held = max(jobs * HELD_PER_JOB, HELD_AT_LEAST) if stream.options.ordered else 1 << 62
        self.lock = threading.Lock()  # held while a call is being sent
        self.stopped = False  # set under ``lock``: no call is sent after it
        self.sent: queue.Queue[Any] = queue.Queue()

    def run(self) -> None:
        from shellflow.engine.client import send

        options = self.stream.options
        burst = self.stream.burst
        number = 0
        try:
            for record in read_records(self.source, options.nul):
                value = self.stream.value(record, number + 1)
                if value is _SKIP:
                    continue
                if isinstance(value, BadRecord):
                    self.sent.put(value)
                    break
                number += 1
                while not self.room.acquire(timeout=PROGRESS_EVERY):
                    if self.stopped:
                        return
                # Ordered output holds finished results behind a slow call: bound them.
                while number - self.stream.next_out >= self.held:
                    if self.stopped:
                        return
                    time.sleep(0.01)
                with self.lock:
                    if self.stopped:
                        return
                    if burst is not None:
                        call_id = burst.send([value], options.kwargs, flow=options.flow,
                                             parent=options.parent)  # fmt: skip
                        call = _Call(number, call_id, None, time.monotonic())
                    else:
                        sent = send(self.stream.settings, options.socket, [value],
                                    options.kwargs, flow=options.flow,
                                    parent=options.parent)  # fmt: skip
                        call = _Call(number, sent.call_id, sent.handle, time.monotonic())
                self.sent.put(call)
        except Exception as exc:  # a broker down, unreadable input: the main thread raises it
            self.sent.put(exc)
        self.sent.put(_EOF)

    def stop(self) -> None:
        with self.lock:
            self.stopped = True


class Stream:
    """One streaming run: a sender thread sends, this thread collects and writes results."""

    def __init__(self, settings: Any, options: Options, out: IO[bytes], err: IO[str]) -> None:
        self.settings = settings
        self.options = options
        self.out = out
        self.err = err
        self.summary = Summary()
        self.unfinished: dict[int, _Call] = {}
        self.finished: dict[int, _Call] = {}  # ended, waiting for their turn (ordered)
        self.next_out = 1  # the record number written next (ordered)
        self.ready: list[_Call] = []  # ended since the last look, fed by the consumer
        self.native = False
        self.burst: Any = None  # an engine.bursts.Burst when the backend is Redis
        self.by_id: dict[str, _Call] = {}
        self.early: dict[str, Any] = {}  # outcomes of calls not handed over yet
        self._last_result = 0.0
        self._last_progress = 0.0

    def run(self, source: IO[bytes]) -> Summary:
        from shellflow.engine.bursts import Burst, socket_concurrency
        from shellflow.engine.client import app_for, route_for

        options = self.options
        route_for(self.settings, options.socket)  # NotFound before reading any input
        jobs = options.jobs or JOBS_PER_CPU * socket_concurrency(self.settings, options.socket)
        burst = Burst(self.settings, options.socket)
        if burst.native:
            burst.start()
            self.burst = burst
        # Celery keeps one backend per thread: the sender's (which its calls' results
        # subscribe through) is the one to drain, so it is taken from the first call.
        backend = app_for(self.settings).backend
        self.native = hasattr(backend, "result_consumer") and getattr(backend, "is_async", False)
        sender = _Sender(self, source, jobs)
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
                    if item is _EOF:
                        sending = False
                    elif isinstance(item, BadRecord):
                        self.summary.bad_record = item
                        sending = False
                    elif isinstance(item, Exception):
                        raise item
                    else:
                        self._track(item, sender)
                if self.unfinished:
                    self._collect(sender, self._patience())
                self._expire(sender)
                self._write_ready()
                self._show_progress(started)
                if self.summary.halted and sending:
                    sender.stop()
                    sending = False
                    if options.halt.when == "now":
                        self._cancel_unfinished("Cancelled: the stream halted")
            self._write_ready(final=True)
        except BrokenPipeError:
            self.summary.reader_gone = True
            sender.stop()
            self._cancel_unfinished("Cancelled: the stream's reader went away")
        except BaseException:
            sender.stop()
            self._cancel_unfinished("Cancelled: the stream was interrupted")
            raise
        finally:
            self.summary.seconds = time.monotonic() - started
            self._clear_progress()
            burst.close()
        return self.summary

    # -- input -----------------------------------------------------------------------------

    def value(self, record: bytes, number: int) -> Any:
        """A record's value (the sender's thread); _SKIP or a BadRecord when it has none."""
        text = record.decode("utf-8", errors="replace")
        if not self.options.json_lines:
            return parse_value(text)
        if not text.strip():
            return _SKIP
        try:
            return json.loads(text)
        except ValueError as exc:
            message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            return BadRecord(f"record {number}: not JSON: {message}")

    # -- calls -----------------------------------------------------------------------------

    def _track(self, call: _Call, sender: _Sender) -> None:
        self.unfinished[call.number] = call
        self.summary.calls += 1
        if self.burst is not None:
            self.by_id[call.call_id] = call
            early = self.early.pop(call.call_id, None)
            if early is not None:
                self._ended(call, early, sender)
        elif self.native:
            call.handle.then(lambda *_: self.ready.append(call))

    def _patience(self) -> float:
        """How long to wait for results: until the next call's time-out, at most a moment."""
        if self.options.timeout is None:
            return PROGRESS_EVERY
        oldest = min(c.sent for c in self.unfinished.values())
        return max(0.0, min(PROGRESS_EVERY, oldest + self.options.timeout - time.monotonic()))

    def _collect(self, sender: _Sender, timeout: float) -> None:
        """Let finished calls report: from the burst's subscription, or Celery's consumer."""
        if self.burst is not None:
            self._collect_burst(sender, timeout)
            return
        if self.native:
            consumer = next(iter(self.unfinished.values())).handle.backend.result_consumer
            if not self.ready:
                consumer.drain_events(timeout=timeout)
            # Take whatever else has already arrived, without waiting again.
            while self.ready and len(self.ready) < len(self.unfinished):
                before = len(self.ready)
                consumer.drain_events(timeout=0)
                if len(self.ready) == before:
                    break
        else:  # a backend without a push channel: ask about each call
            time.sleep(min(timeout, 0.05))
            self.ready.extend(c for c in self.unfinished.values() if c.handle.ready())
        ready, self.ready = self.ready, []
        for call in ready:
            if self.unfinished.pop(call.number, None) is not None:
                self._settle(call)
                self._free(sender)

    def _collect_burst(self, sender: _Sender, timeout: float) -> None:
        outcomes = self.burst.results(timeout)
        now = time.monotonic()
        if outcomes:
            self._last_result = now
        elif now - max(self._last_result, self._oldest()) > LOOK_AFTER:
            # Quiet for a while: read the stored results in case a message went missing.
            self._last_result = now
            outcomes = self.burst.look([c.call_id for c in self.unfinished.values()])
        for outcome in outcomes:
            call = self.by_id.get(outcome.call_id)
            if call is None:  # ended before the sender's hand-over reached this thread
                self.early[outcome.call_id] = outcome
            else:
                self._ended(call, outcome, sender)

    def _ended(self, call: _Call, outcome: Any, sender: _Sender) -> None:
        self.by_id.pop(call.call_id, None)
        if self.unfinished.pop(call.number, None) is None:
            return
        if outcome.state == "finished":
            call.state, call.value = "ok", outcome.result
            self.summary.ok += 1
        else:
            call.state = "failed"
            call.value = outcome.error or outcome.state
            self._failed()
        self.finished[call.number] = call
        self._free(sender)

    def _oldest(self) -> float:
        return min((c.sent for c in self.unfinished.values()), default=time.monotonic())

    def _settle(self, call: _Call) -> None:
        from celery import states

        handle = call.handle
        status = handle.state
        if status == states.SUCCESS:
            call.state, call.value = "ok", handle.result
            self.summary.ok += 1
        else:
            call.state = "failed"
            call.value = _error_text(handle.result, status)
            self._failed()
        self.finished[call.number] = call

    def _free(self, sender: _Sender) -> None:
        """A call ended: room for the next one, unless the stream halts (stopped first)."""
        if self.summary.halted:
            sender.stop()
        else:
            sender.room.release()

    def _failed(self) -> None:
        self.summary.failed += 1
        if self.options.halt.reached(self.summary.failed):
            self.summary.halted = True

    def _expire(self, sender: _Sender) -> None:
        """Calls past their time-out count as failed and are cancelled if not started."""
        if self.options.timeout is None or not self.unfinished:
            return
        now = time.monotonic()
        late = [c for c in self.unfinished.values() if now - c.sent >= self.options.timeout]
        if not late:
            return
        from shellflow.engine.client import release
        from shellflow.engine.outcomes import revoke

        for call in late:
            del self.unfinished[call.number]
            self.by_id.pop(call.call_id, None)
            release(call.handle)
            call.state, call.value = "timedout", f"timed out after {self.options.timeout:g} s"
            self.summary.timed_out += 1
            self._failed()
            self.finished[call.number] = call
            self._free(sender)
        revoke(self.settings, [c.call_id for c in late])

    def _cancel_unfinished(self, note: str) -> None:
        """Cancel the calls not yet started (one broadcast); best effort on the way out."""
        from shellflow.engine.client import release
        from shellflow.engine.outcomes import record_cancelled, revoke

        ids = [c.call_id for c in self.unfinished.values()]
        for call in self.unfinished.values():
            release(call.handle)
        self.unfinished.clear()
        if not ids:
            return

        try:
            revoke(self.settings, ids)
            record_cancelled(self.settings, ids, note)
        except Exception:  # leaving anyway; a call that runs still gets its own record
            pass

    # -- output ----------------------------------------------------------------------------

    def _write_ready(self, final: bool = False) -> None:
        if self.options.ordered:
            while self.next_out in self.finished:
                self._write(self.finished.pop(self.next_out))
                self.next_out += 1
            if final:  # halted now: what is left is written as it is, in order
                for number in sorted(self.finished):
                    self._write(self.finished.pop(number))
        else:
            for number in list(self.finished):
                self._write(self.finished.pop(number))

    def _write(self, call: _Call) -> None:
        if call.state == "ok":
            self.out.write(format_result(call.value).encode("utf-8", "surrogateescape") + b"\n")
            self.out.flush()
            return
        self._clear_progress()
        self.err.write(f"flow: record {call.number} (call {call.call_id}): {call.value}\n")
        self.err.flush()

    def _show_progress(self, started: float) -> None:
        if not self.options.progress:
            return
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_EVERY:
            return
        self._last_progress = now
        s = self.summary
        done = s.ok + s.failed
        rate = done / max(now - started, 1e-9)
        self.err.write(
            f"\r\x1b[K{done} done, {s.failed} failed, {len(self.unfinished)} running,"
            f" {rate:.0f} calls/s"
        )
        self.err.flush()

    def _clear_progress(self) -> None:
        if self.options.progress and self._last_progress:
            self.err.write("\r\x1b[K")
            self.err.flush()


_SKIP = object()


def _error_text(value: Any, status: str) -> str:
    if status == "REVOKED":
        return "cancelled"
    if isinstance(value, BaseException):
        return str(value) or type(value).__name__
    return str(value) if value is not None else status.lower()


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
    except OSError:
        pass
