"""A stream's input side: records read from a byte stream, their values, and the sender.

The :class:`Sender` thread reads the records and sends one call per record while the window
has room: at most ``jobs`` calls unfinished and, in ordered output, a bounded number of
finished results held behind a slow one. Each sent :class:`Call` (or the end of input, or
an error) is handed to the collecting thread (:mod:`shellflow.client.stream`) as it goes.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from shellflow.client.stream_options import PROGRESS_EVERY
from shellflow.client.values import input_value
from shellflow.errors import ServiceUnavailable, UsageError
from shellflow.values import MAX_BYTES, MAX_DEPTH, ValueRefused, check, decode_text, size_text

if TYPE_CHECKING:
    from shellflow.client.stream import Stream

CHUNK = 1 << 16
HELD_PER_JOB = 64  # results kept waiting for an earlier one (ordered), per job
HELD_AT_LEAST = 4096
HELD_BYTES = 64 << 20  # bytes of results kept waiting for an earlier one (ordered), at most

EOF = object()  # the sender's last hand-over: no more calls
SKIP = object()  # a record without a value (a blank line of NDJSON)


RECORD_MAX = MAX_BYTES + 2  # a record longer than this cannot be a call's input


class BadRecord(UsageError):
    """An input record that cannot be a call's input (``--json`` and not JSON, bytes that
    are not UTF-8, a value beyond a limit of ``shellflow.values``)."""


class LongRecord(bytes):
    """The start of a record longer than any call's input may be (read no further)."""


def read_records(source: IO[bytes], nul: bool) -> Iterator[bytes]:
    """Records of a byte stream: lines without their newline, or NUL-terminated records.

    A record longer than :data:`RECORD_MAX` is yielded as a :class:`LongRecord` (its
    start) and ends the reading: memory stays bounded whatever the input.
    """
    if not nul:
        while line := source.readline(RECORD_MAX):
            if not line.endswith(b"\n") and len(line) >= RECORD_MAX:
                yield LongRecord(line)
                return
            yield line[:-1] if line.endswith(b"\n") else line
        return
    read = getattr(source, "read1", source.read)  # what is there: a pipe may be slow
    rest = b""
    while chunk := read(CHUNK):
        parts = (rest + chunk).split(b"\0")
        rest = parts.pop()
        yield from parts
        if len(rest) >= RECORD_MAX:
            yield LongRecord(rest)
            return
    if rest:
        yield rest


def record_value(record: bytes, number: int, json_lines: bool) -> Any:
    """A record's value (the sender's thread); SKIP or a BadRecord when it has none."""
    what = f"record {number}"
    if isinstance(record, LongRecord):
        return BadRecord(f"{what}: longer than {size_text(MAX_BYTES)}, the limit of a"
                         " call's input")  # fmt: skip
    try:
        if not json_lines:
            return input_value(record, what)
        text = decode_text(record, what)
        if not text.strip():
            return SKIP
        try:
            value = json.loads(text)
        except RecursionError:
            return BadRecord(f"{what}: nested deeper than {MAX_DEPTH} levels")
        except ValueError as exc:
            message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            return BadRecord(f"{what}: not JSON: {message}")
        check(value, what)
        return value
    except ValueRefused as exc:
        return BadRecord(str(exc))


@dataclass
class Call:
    number: int  # 1-based input record number
    call_id: str
    handle: Any
    sent: float
    state: str = "pending"  # pending | ok | failed | timedout
    value: Any = None


class Sender(threading.Thread):
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
        options = self.stream.options
        burst = self.stream.burst
        flow = self.stream.flow
        records = self.stream.records
        number = 0
        try:
            for record in read_records(self.source, options.nul):
                value = record_value(record, number + 1, options.json_lines)
                if value is SKIP:
                    continue
                if isinstance(value, BadRecord):
                    self.sent.put(value)
                    break
                number += 1
                while not self.room.acquire(timeout=PROGRESS_EVERY):
                    if self.stopped:
                        return
                # Ordered output holds finished results behind a slow call: bound them.
                while self.holding_full(number):
                    if self.stopped:
                        return
                    time.sleep(0.01)
                call = self._send(number, value, burst.next_id() if burst else None)
                if call is None:
                    return
                records.add(call.call_id, [value], options.kwargs, flow, options.parent,
                            lambda: self.stopped)  # fmt: skip
                self.sent.put(call)
        except Exception as exc:  # a broker down, unreadable input: the main thread raises it
            self.sent.put(exc)
        self.sent.put(EOF)

    def holding_full(self, number: int) -> bool:
        """Whether call ``number`` must wait: the results held behind a slower earlier call
        (ordered output) are as many as allowed, or their bytes pass :data:`HELD_BYTES`
        (a larger result is held alone). Whatever is held waits for the call numbered
        ``next_out``, already sent, so the wait ends when it does."""
        stream = self.stream
        return number - stream.next_out >= self.held or stream.held_bytes > HELD_BYTES

    def _send(self, number: int, value: Any, call_id: str | None) -> Call | None:
        """Publish the record's call, again with the same id while the broker is down
        (``shellflow.client.stream_outage``); None once the stream stopped."""
        from shellflow.engine.calls.sender import send

        options, burst, outage = self.stream.options, self.stream.burst, self.stream.outage
        flow = self.stream.flow
        failure: ServiceUnavailable | None = None
        while True:
            with self.lock:
                if self.stopped:
                    return None
                try:
                    if burst is not None:
                        burst.send([value], options.kwargs, flow=flow, parent=options.parent,
                                   call_id=call_id)  # fmt: skip
                        call = Call(number, str(call_id), None, time.monotonic())
                    else:
                        sent = send(self.stream.settings, options.socket, [value],
                                    options.kwargs, flow=flow, parent=options.parent)  # fmt: skip
                        call = Call(number, sent.call_id, sent.handle, time.monotonic())
                except ServiceUnavailable as exc:
                    failure = exc
                else:
                    outage.recovered("broker")
                    if failure is not None:
                        outage.recovered(failure.service)
                    return call
            outage.failed(failure)  # outside the lock: the stream may stop meanwhile

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
