"""Call records: one call row per call and its events and log lines, spooled by the worker.

**One row per call.** The call's id is the broker message's task id and every write is an
upsert on it, so a redelivered message (after a worker was lost, a warm shutdown, a broker
restart) updates the same row instead of creating a second call.

**When records are written, and the guarantee.** A call's records are buffered in its worker
process while the function runs and, when it ends, *inside the task*, appended as one line
to the process's spool file (``shellflow.engine.records.spool``: one ``write``). The worker's main
process commits the spool in batches (``shellflow.engine.records.spool_writer``). The prefork child
reports the call done only after the task returns, and only then does Celery acknowledge
the message (acks_late), so:

- a call whose message was acknowledged has its complete record (row, events, log lines)
  in the spool, which the kernel keeps whatever happens to the worker's processes; the
  writer commits it within milliseconds, or, if the whole worker died first, the next
  worker started for the processor on that machine commits it before serving;
- a worker process killed earlier (``kill -9`` mid-call, or before the acknowledgement)
  leaves its message unacknowledged: it is delivered again and the same row is completed
  (see :class:`Delivery`), never duplicated;
- while the database cannot be reached, calls go on and their records wait in the spool;
  the writer commits them when it is back (every write is idempotent).

What this allows: a caller may get a result some milliseconds before its record is
committed (a reader that needs it at once polls for it), which keeps the record write out
of a call's round trip, and lets one transaction carry many calls' records.

A call that is still running after :data:`RUNNING_AFTER` seconds has its ``running`` row
(and ``retry`` events) spooled in the background, so long calls are visible while they run;
short calls are one line in all. Buffered rows are also spooled when the worker process
shuts down (:meth:`Recorder.close`).

Durability is that of the model database's commit, relaxed the same way on both databases:
SQLite runs in WAL mode with ``synchronous=NORMAL`` and the PostgreSQL connection that writes
records uses ``synchronous_commit=off``. Either way a committed record survives any crash of
shellflow's processes; only a crash of the database server's machine itself may drop the
last fraction of a second of commits (PostgreSQL's documented trade-off), as may a crash of
the worker's machine for the spool (the same trade-off, for the same reason: no disk flush
per call).

**Why batches.** The database's cost is mostly per statement and per transaction, not per
row. Measured here (PostgreSQL, the call table with its indexes): one upsert per
transaction cost the server about 105 us of CPU per call; one multi-row upsert of 20 calls,
28 us. A prefork process runs one call at a time and must not report it done before its
record is safe, so it cannot wait for other calls' records: the spool makes the record
safe at once and leaves the batching to the writer.

The commit itself is ``shellflow.engine.records.store``'s; the SQL, and the form of each
value in a spooled row (times as the database stores them), ``shellflow.model.call_writes``'s.

**One row for an ordinary call.** Its lifecycle events (received, prerun, postrun or
failure) are told by the call row's own times and state (``shellflow.model.lifecycle``), so
they are published but not stored as rows; only the events that are not the same for every
call (retry, redelivered, revoked, plug, deadletter) and printed lines add rows. Writing the
three lifecycle rows cost the database more than the call row itself.

**Live events follow commits.** Each batch of events and log lines is handed to
``on_stored`` (the worker's ``shellflow.engine.records.events.Publisher``) by the writer only once
it is committed, so whatever a live listener sees can be read back from the records.

**Redeliveries are counted here.** A message that arrives flagged ``redelivered`` first
writes, synchronously and before its function runs, a ``redelivered`` event; the number of
those events is the call's redelivery count that ``shellflow.engine.worker.delivery`` caps with a
dead-letter queue. First deliveries pay nothing for it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shellflow import forks, process_state
from shellflow.engine.records.events import Stored
from shellflow.engine.records.spool import Spool
from shellflow.engine.records.store import Pending, RecordStore, RecordsUnavailable
from shellflow.model import lifecycle
from shellflow.model.call_writes import call_values
from shellflow.model.dialects import sql_time
from shellflow.model.lifecycle import DEAD, FAILURE, POSTRUN, PRERUN, RECEIVED
from shellflow.model.urls import dialect_of
from shellflow.values import MAX_ERROR_CHARS, MAX_OUTPUT_BYTES, shown_text

RUNNING_AFTER = 0.25  # seconds before a running call's row is written ahead of its end
KNOWN_CALLS = 256  # calls whose socket and flow run are remembered for their late events
TRACE_MAX = 4 * MAX_ERROR_CHARS  # characters of a traceback kept

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallStart:
    call_id: str
    socket_id: str | None
    task_id: str | None
    name: str
    args: Any
    flow: str | None
    parent: str | None
    hostname: str
    worker: str
    owner: str | None = None
    sources: list[str] | None = None  # the calls whose results it receives, if several


@dataclass(frozen=True)
class Delivery:
    """What the records knew about a call when this delivery of its message began."""

    call_id: str
    redelivered: bool
    redeliveries: int = 0  # redelivered runs of this call so far, this one included
    state: str | None = None  # the call's state before this delivery (None: no row yet)
    result: str | None = None  # its result as JSON text, when it had finished


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=repr)
_encode = _ENCODER.encode  # one encoder, not one per value as json.dumps(..., options) makes
_ascii = json.JSONEncoder(separators=(",", ":"), default=repr).encode


def _json(value: Any) -> str:
    """A value as the JSON text a call row stores; never raises.

    The worker refuses values beyond the limits (``shellflow.values``) before they get here,
    but a record must be written whatever a message held: text that is not UTF-8 (a lone
    surrogate) is written as JSON's escape (ASCII JSON, the same value), and a value JSON
    cannot write at all (nested past the recursion limit, an integer past Python's digit
    limit) as a JSON string saying so.
    """
    try:
        text = _encode(value)
        if not text.isascii():
            text.encode("utf-8")  # a lone surrogate raises here, not in the spool
        return text
    except UnicodeEncodeError:
        return _ascii(value)
    except (ValueError, RecursionError, TypeError) as exc:
        return _ascii(f"<not recordable: {type(exc).__name__}: {shown_text(str(exc), 200)}>")


def _text(value: str | None, limit: int = MAX_ERROR_CHARS) -> str | None:
    """Plain text a row stores (an error, a traceback, a printed line): NUL and lone
    surrogates escaped, cut to ``limit``, so no database refuses the call's record."""
    return None if value is None else shown_text(value, limit)


def _spooled(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else repr(value)


_spool_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_spooled).encode
_spool_ascii = json.JSONEncoder(separators=(",", ":"), default=_spooled).encode


def _spooled_line(record: dict[str, Any]) -> bytes:
    """One spool line; a record JSON cannot write whole loses its live events' data (the
    ``s`` entries: published, never stored), not its rows."""
    try:
        return _spool_json(record).encode("utf-8", "backslashreplace") + b"\n"
    except (ValueError, RecursionError, TypeError):
        record["s"] = [(*event[:6], None) for event in record["s"]]
        return _spool_ascii(record).encode() + b"\n"


class _Ids:
    """Unique ids for event and log rows, cheaply: a random 80-bit prefix per process and a
    counter, in the shape of a UUID (a uuid4 per row cost more than the row's insert)."""

    def __init__(self) -> None:
        self.after_fork()

    def after_fork(self) -> None:
        """A forked pool process draws its own prefix, or its ids would repeat its parent's."""
        raw = os.urandom(10).hex()
        self._prefix = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-"
        self._count = 0

    def __call__(self) -> str:
        self._count += 1
        return f"{self._prefix}{self._count:012x}"


_new_id = process_state.own(__name__, _Ids())


class Recorder:
    """Buffers and writes the records of the calls running in one worker process.

    Created once in the worker's main process; each prefork child (one call at a time) gets
    its own connection, buffers and background writer after the fork.
    """

    def __init__(
        self,
        url: str,
        spool: Spool,
        on_stored: Callable[[list[Stored]], None] | None = None,
    ) -> None:
        self.url = url
        self.spool = spool  # where records go, for the worker's writer to commit
        self.on_stored = on_stored  # publishes a redelivery's event, written at once
        self.dialect = dialect_of(url)
        self.after_fork()
        forks.at_fork(self.after_fork)

    # -- process state ---------------------------------------------------------------------

    def after_fork(self) -> None:
        """Start this process's own records: the parent's buffers, connection and writer
        thread are its own (dropped here unclosed; the thread does not exist in a child)."""
        self._store = RecordStore(self.url, self.on_stored)  # redeliveries are counted now
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._calls: dict[str, dict[str, Any]] = {}  # rows of the calls running here
        self._deliveries: dict[str, Delivery] = {}
        self._pending = Pending()  # records to spool at the next flush
        self._known: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
        self._since: float | None = None  # when the oldest unwritten record was buffered
        self._last = datetime.min.replace(tzinfo=UTC)

    def _now(self) -> datetime:
        """Now, strictly after the last time handed out, so events keep their order."""
        now = datetime.now(UTC)
        if now <= self._last:
            now = self._last + timedelta(microseconds=1)
        self._last = now
        return now

    def _time(self, value: datetime | None) -> Any:
        return sql_time(self.dialect, value)

    # -- what the worker reports -----------------------------------------------------------

    def started(self, start: CallStart, redelivered: bool = False) -> Delivery:
        """A call begins; a redelivered one is counted durably before its function runs."""
        with self._lock:
            now = self._now()
            row = {
                "id": start.call_id, "created": now, "lastupdated": now, "name": start.name,
                "owner": start.owner, "state": "running", "socket_id": start.socket_id,
                "task_id": start.task_id, "parent": start.parent, "tracking": start.flow,
                "celeryid": start.call_id, "args": _json(start.args),
                "hostname": start.hostname, "worker": start.worker, "started": now,
                "finished": None, "result": None, "error": None, "traceback": None,
                "sources": _json(start.sources) if start.sources else None,
            }  # fmt: skip
            self._calls[start.call_id] = row
            self._known[start.call_id] = (start.name, start.flow)
            while len(self._known) > KNOWN_CALLS:
                self._known.popitem(last=False)
            if redelivered:
                delivery = self._count_redelivery(row)
                now = self._now()  # this run starts after its ``redelivered`` event
                row.update(started=now, lastupdated=now)
            else:
                delivery = Delivery(start.call_id, False)
            # Told by the row itself (shellflow.model.lifecycle): published, not stored.
            self._lifecycle(start.call_id, RECEIVED, now)
            self._lifecycle(start.call_id, PRERUN, now)
            self._deliveries[start.call_id] = delivery
            if delivery.state != "finished":
                self._pending.rows[start.call_id] = row
            self._buffered()
            return delivery

    def delivery(self, call_id: str) -> Delivery | None:
        return self._deliveries.get(call_id)

    def finished(self, call_id: str, name: str, result: Any, output: list[str]) -> None:
        self._end(call_id, {"state": "finished", "result": _json(result)}, POSTRUN,
                  lifecycle.note(POSTRUN, name), output, result)  # fmt: skip

    def failed(
        self, call_id: str, name: str, error: str, traceback: str, output: list[str],
        state: str = "failed",
    ) -> None:  # fmt: skip
        """The call ended with ``error``: ``failed`` (its function raised, or its value was
        refused) or ``dead`` (redelivered too often: ``shellflow.engine.worker.delivery``)."""
        error = _text(error) or ""
        values = {"state": state, "error": error, "traceback": _text(traceback, TRACE_MAX)}
        end = DEAD if state == "dead" else FAILURE
        self._end(call_id, values, end, lifecycle.note(end, name, error), output, error)

    def event(self, call_id: str, name: str, note: str, state: str | None = None) -> None:
        """An event of a call; written with the call's end, or now if the call has ended."""
        with self._lock:
            now = self._now()
            row = self._calls.get(call_id)
            if row is not None:
                if state:
                    row.update(state=state, lastupdated=now)
                    self._pending.rows[call_id] = row
                self._event(call_id, name, note, now)
                self._buffered()
                return
            if state:
                self._pending.updates.append((state, self._time(now), call_id))
            self._event(call_id, name, note, now)
            self._flush_or_reject()

    def undelivered(self, start: CallStart, reason: str) -> None:
        """A call that could not even be sent (a plug's target): its row, ``failed`` with
        the reason, and a ``deadletter`` event, written now."""
        with self._lock:
            now = self._now()
            self._known[start.call_id] = (start.name, start.flow)
            self._pending.rows[start.call_id] = {
                "id": start.call_id, "created": now, "lastupdated": now, "name": start.name,
                "owner": start.owner, "state": "failed", "socket_id": start.socket_id,
                "task_id": start.task_id, "parent": start.parent, "tracking": start.flow,
                "celeryid": start.call_id, "args": _json(start.args),
                "hostname": start.hostname, "worker": start.worker, "started": None,
                "finished": now, "result": None, "traceback": None,
                "error": shown_text(f"Undeliverable: {reason}", 2000),
                "sources": _json(start.sources) if start.sources else None,
            }  # fmt: skip
            self._event(start.call_id, "deadletter", reason[:2000], now)
            self._flush_or_reject()

    def close(self) -> None:
        """Flush what is left (worker shutdown) and close the connection."""
        with self._lock:
            try:
                self._flush()
            finally:
                self._store.close()
                self.spool.close()

    # -- buffering -------------------------------------------------------------------------

    def _event(
        self, call_id: str, name: str, note: str, when: datetime, data: Any = None
    ) -> tuple[Any, ...]:
        row = (_new_id(), self._time(when), name, shown_text(note, 2000), call_id)
        self._pending.events.append(row)
        self._pending.stored.append(self._stored_of(row[0], call_id, name, when, data))
        return row

    def _lifecycle(self, call_id: str, name: str, when: datetime, data: Any = None) -> None:
        """A lifecycle event: its row is the call's own, so it is only published."""
        self._pending.stored.append(
            self._stored_of(lifecycle.event_id(call_id, name), call_id, name, when, data)
        )

    def _stored_of(
        self, event_id: str, call_id: str, name: str, when: datetime, data: Any
    ) -> Stored:
        socket, flow = self._known.get(call_id, ("", None))
        return Stored(event_id, call_id, socket, flow, name, when, data)

    def _end(
        self, call_id: str, values: dict[str, Any], event: str, note: str, output: list[str],
        data: Any = None,
    ) -> None:  # fmt: skip
        with self._lock:
            now = self._now()
            row = self._calls.pop(call_id, None)
            self._deliveries.pop(call_id, None)
            if row is None:  # not started in this process: only its state can be set
                self._pending.updates.append((values["state"], self._time(now), call_id))
                self._event(call_id, event, note, now, data)  # the row cannot tell it
            else:
                row.update(values, finished=now, lastupdated=now)
                self._pending.rows[call_id] = row
                self._lifecycle(call_id, event, now, data)
            for line in output:
                line = shown_text(line, MAX_OUTPUT_BYTES)
                log_id = _new_id()
                entry = (log_id, self._time(now), call_id, "call", line, "stdout", False)
                self._pending.logs.append(entry)
                self._pending.stored.append(self._stored_of(log_id, call_id, "log", now, line))
            self._flush_or_reject()

    def _buffered(self) -> None:
        if self._since is None:
            self._since = time.monotonic()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._background, name="shellflow-records", daemon=True
            )
            self._thread.start()

    def _background(self) -> None:
        """Write the rows of calls that run longer than RUNNING_AFTER while they run.

        It looks every RUNNING_AFTER / 2 seconds rather than being woken for each call, so a
        short call never pays for a thread switch.
        """
        with self._wake:
            while True:
                self._wake.wait(RUNNING_AFTER / 2)
                if self._since is None or time.monotonic() - self._since < RUNNING_AFTER:
                    continue
                try:
                    self._flush()
                except Exception as exc:  # tried again at the call's end
                    log.warning("call records not written yet: %s", exc)
                    self._since = time.monotonic()

    def _flush_or_reject(self) -> None:
        """Spool for a call's end: if that fails (a full disk), send the message back rather
        than have it acknowledged without its record."""
        try:
            self._flush()
        except OSError as exc:
            from celery.exceptions import Reject

            raise Reject(f"call records cannot be spooled: {exc}", requeue=True) from exc

    # -- writing ---------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._pending:
            self._to_spool()
        self._since = None

    def _to_spool(self) -> None:
        """Append the buffered records to this process's spool file, as one line.

        Safe once appended: the worker's writer commits it (and publishes its events), now
        or, after a crash, when a worker starts again.
        """
        pending = self._pending
        try:
            record = {
                "r": [call_values(self.dialect, r) for r in pending.rows.values()],
                "u": pending.updates, "e": pending.events, "l": pending.logs,
                "s": [tuple(event) for event in pending.stored],
            }  # fmt: skip
            line = _spooled_line(record)
        except Exception:  # these records alone are lost, never the next call's
            pending.clear()
            raise
        self.spool.append(line)  # a full disk: kept, written with the next flush
        pending.clear()

    def _count_redelivery(self, row: dict[str, Any]) -> Delivery:
        """Make sure the row exists, read what it knew, and add a ``redelivered`` event."""
        call_id = row["id"]
        when = self._now()
        marker = (_new_id(), self._time(when), "redelivered",
                  f"Redelivered call of {row['name']}", call_id)  # fmt: skip
        try:
            previous, before = self._store.count_redelivery(call_values(self.dialect, row), marker)
        except RecordsUnavailable as exc:
            from celery.exceptions import Reject

            raise Reject(str(exc), requeue=True) from exc
        self._store.published([self._stored_of(marker[0], call_id, "redelivered", when, None)])
        return Delivery(
            call_id, True, redeliveries=before + 1,
            state=previous[0] if previous else None, result=previous[1] if previous else None,
        )  # fmt: skip
