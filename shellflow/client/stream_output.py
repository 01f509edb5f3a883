"""A stream's output side: results written in input order (or as they end), and progress.

A finished call's result goes to stdout, flushed at once; a failure is one line on stderr
(its record number, call id and error). In ordered output a result waits in ``finished``
until every earlier record's is written. On a TTY a progress line on stderr is redrawn
every moment and wiped before anything else is written there.
"""

from __future__ import annotations

import time
from typing import IO, TYPE_CHECKING

from shellflow.client.stream_options import PROGRESS_EVERY
from shellflow.printable import printable

if TYPE_CHECKING:
    from shellflow.client.stream_input import Call
    from shellflow.client.stream_options import Options, Summary


class OrderedOutput:
    """The writing half of :class:`shellflow.client.stream.Stream` (whose state it uses)."""

    options: Options
    summary: Summary
    out: IO[bytes]
    err: IO[str]
    unfinished: dict[int, Call]
    finished: dict[int, Call]  # ended, waiting for their turn (ordered)
    next_out: int  # the record number written next (ordered)
    held_bytes: int  # the bytes of the results in ``finished``
    _last_progress: float

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

    def _write(self, call: Call) -> None:
        if call.state == "ok":  # its line, made when it ended (``_hold``)
            self.held_bytes -= len(call.value)
            self.out.write(call.value)
            self.out.flush()
            return
        self._clear_progress()
        # The error is the function's own text: one line, its control characters written out.
        error = printable(str(call.value))
        self.err.write(f"flow: record {call.number} (call {call.call_id}): {error}\n")
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
