"""A stream's result side: which calls ended, how, and what becomes of the late ones.

Three ways to learn that a call ended, chosen once per stream: the burst's own Redis
subscription (:mod:`shellflow.engine.calls.bursts`), with a read of the stored results when it is
quiet a while; Celery's native result consumer, where each finished call fulfils a promise;
or, for a backend with no push channel, asking each call. Ended calls move from
``unfinished`` to ``finished`` with their state and value; each frees room in the sender's
window. Calls past their time-out and those left when the stream stops are cancelled here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from shellflow.client.stream_options import PROGRESS_EVERY
from shellflow.client.values import format_result
from shellflow.engine.calls.result_meta import decode, error_text

if TYPE_CHECKING:
    from shellflow.client.stream_input import Call, Sender
    from shellflow.client.stream_options import Options, Summary

LOOK_AFTER = 1.0  # seconds without a result before the stored results are read


class ResultCollection:
    """The collecting half of :class:`shellflow.client.stream.Stream` (whose state it uses)."""

    settings: Any
    options: Options
    summary: Summary
    unfinished: dict[int, Call]
    finished: dict[int, Call]  # ended, waiting for their turn (ordered)
    ready: list[Call]  # ended since the last look, fed by the consumer
    native: bool
    burst: Any  # an engine.calls.bursts.Burst when the backend is Redis
    by_id: dict[str, Call]
    early: dict[str, Any]  # outcomes of calls not handed over yet
    handed: int  # the burst's sequence number of the last call handed over
    held_bytes: int  # the bytes of the results in ``finished``
    _last_result: float

    def _track(self, call: Call, sender: Sender) -> None:
        self.unfinished[call.number] = call
        self.summary.calls += 1
        if self.burst is not None:
            self.by_id[call.call_id] = call
            self.handed = self.burst.sequence(call.call_id) or self.handed
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

    def _collect(self, sender: Sender, timeout: float) -> None:
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

    def _collect_burst(self, sender: Sender, timeout: float) -> None:
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
            if call is None:
                self._early(outcome)
            else:
                self._ended(call, outcome, sender)

    def _early(self, outcome: Any) -> None:
        """Keep the outcome of a call that ended before the sender's hand-over reached this
        thread (at most the window's calls are sent and not handed over). A second outcome
        of a call already settled (published, then read again by :meth:`burst.look`, or a
        redelivered call's) is dropped: kept, one a call, it would grow with the stream."""
        sequence = self.burst.sequence(outcome.call_id)
        if sequence is not None and sequence > self.handed:
            self.early[outcome.call_id] = outcome

    def _ended(self, call: Call, outcome: Any, sender: Sender) -> None:
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
        self._hold(call)
        self._free(sender)

    def _hold(self, call: Call) -> None:
        """An ended call waits for its turn; a result is held as the line it writes, whose
        bytes the sender's window counts (``held_bytes``)."""
        if call.state == "ok":
            call.value = format_result(call.value).encode("utf-8", "surrogateescape") + b"\n"
            self.held_bytes += len(call.value)
        self.finished[call.number] = call

    def _oldest(self) -> float:
        return min((c.sent for c in self.unfinished.values()), default=time.monotonic())

    def _settle(self, call: Call) -> None:
        handle = call.handle
        status, value = handle.state, handle.result
        ended = decode(call.call_id, {"status": status, "result": value})
        if ended is not None and ended.state == "finished":
            call.state, call.value = "ok", ended.result
            self.summary.ok += 1
        else:
            call.state = "failed"
            call.value = ended.error if ended is not None else error_text(value, status)
            self._failed()
        self._hold(call)
        from shellflow.engine.calls.sender import release

        release(handle)  # its backend keeps no reference to it: nothing kept per ended call

    def _free(self, sender: Sender) -> None:
        """A call ended: room for the next one, unless the stream halts (stopped first)."""
        if self.summary.halted:
            sender.stop()
        else:
            sender.room.release()

    def _failed(self) -> None:
        self.summary.failed += 1
        if self.options.halt.reached(self.summary.failed):
            self.summary.halted = True

    def _expire(self, sender: Sender) -> None:
        """Calls past their time-out count as failed and are cancelled if not started."""
        if self.options.timeout is None or not self.unfinished:
            return
        now = time.monotonic()
        late = [c for c in self.unfinished.values() if now - c.sent >= self.options.timeout]
        if not late:
            return
        from shellflow.engine.calls.outcomes import revoke
        from shellflow.engine.calls.sender import release

        for call in late:
            del self.unfinished[call.number]
            self.by_id.pop(call.call_id, None)
            release(call.handle)
            call.state, call.value = "timedout", f"timed out after {self.options.timeout:g} s"
            self.summary.timed_out += 1
            self._failed()
            self._hold(call)
            self._free(sender)
        revoke(self.settings, [c.call_id for c in late])

    def _cancel_unfinished(self, note: str, report: bool = False) -> None:
        """Cancel the calls not yet started (one broadcast); best effort on the way out.

        With ``report`` each becomes a failed call with ``note`` (one line on stderr when
        written), as when its socket went away under the stream."""
        from shellflow.engine.calls.outcomes import record_cancelled, revoke
        from shellflow.engine.calls.sender import release

        ids = [c.call_id for c in self.unfinished.values()]
        for call in self.unfinished.values():
            release(call.handle)
            if report:
                call.state, call.value = "failed", note
                self.summary.failed += 1
                self.finished[call.number] = call
        self.unfinished.clear()
        if not ids:
            return

        try:
            revoke(self.settings, ids)
            record_cancelled(self.settings, ids, note)
        except Exception as exc:  # leaving anyway; a call that runs still gets its own record
            import logging

            logging.getLogger(__name__).warning(
                "%d unfinished calls may not be cancelled: %s: %s",
                len(ids), type(exc).__name__, " ".join(str(exc).split()),
            )  # fmt: skip
