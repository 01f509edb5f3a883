"""A stream's calls recorded ``pending`` as they are sent, in batches, by a thread of their own.

Why: a call the stream published but nobody recorded is invisible until a worker takes it,
and lost from sight if the broker, the result backend or the stream itself goes away first
(``flow ls calls --flow ID -u`` must find it). ``flow task run --async`` writes its one row
after the publish; a stream cannot afford a transaction per call on its sender's path, so
the sender hands each sent call to this thread, which writes whatever has gathered in one
transaction, at most one every :data:`WRITE_EVERY` seconds
(``shellflow.model.call_writes.insert_pending_many``, the one writer of call rows). The rows
are idempotent (``ON CONFLICT DO NOTHING``): a worker's record that came first is kept.

The database may be down for a while: the batch is kept and written again with a bounded
back-off, saying so once on stderr. At most :data:`WAITING_MAX` calls wait unwritten; past
that the sender waits too (memory stays bounded). When the stream ends, :meth:`close` gives
the writes ``grace`` seconds more and says how many calls were left unrecorded (their
workers still record them when they run).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shellflow.model.call_writes import Pending
    from shellflow.model.listing import Reader
    from shellflow.model.routes import SocketRoute

BATCH = 2000  # calls written in one transaction at most
WRITE_EVERY = 0.05  # seconds between two transactions at least
WAITING_MAX = 10_000  # calls handed over and not yet written before the sender waits
BACKOFF_FIRST = 0.1  # seconds before writing again after a failure, doubled each time...
BACKOFF_MAX = 2.0  # ...up to this
_END = object()


class PendingRecorder(threading.Thread):
    """Writes the ``pending`` rows of a stream's calls (see the module's docstring)."""

    def __init__(self, db: str, route: SocketRoute, say: Callable[[str], None]) -> None:
        super().__init__(name="shellflow-stream-records", daemon=True)
        self.db = db
        self.route = route
        self.say = say
        self.todo: queue.Queue[Any] = queue.Queue(maxsize=WAITING_MAX)
        self.recorded = 0
        self.unrecorded = 0  # calls given up on at close
        self._deadline: float | None = None  # set by close: write until then at most
        self._conn: Reader | None = None

    def add(self, call_id: str, args: list[Any], kwargs: dict[str, Any], flow: str,
            parent: str | None, stopped: Callable[[], bool]) -> None:  # fmt: skip
        """Hand a sent call over (the sender's thread); waits while too many are unwritten."""
        item = (call_id, args, kwargs, flow, parent, time.time())
        while True:
            try:
                self.todo.put(item, timeout=0.25)
                return
            except queue.Full:
                if stopped():
                    self.unrecorded += 1
                    return

    def run(self) -> None:
        ending = False
        last = 0.0
        while not ending:
            # A transaction at most every WRITE_EVERY: under load the batches grow, rather
            # than the writes taking the database's write lock once per call.
            wait = last + WRITE_EVERY - time.monotonic()
            if wait > 0 and self._deadline is None:
                time.sleep(wait)
            last = time.monotonic()
            batch: list[Any] = [self.todo.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self.todo.get_nowait())
                except queue.Empty:
                    break
            if _END in batch:
                ending = True
                batch = [item for item in batch if item is not _END]
            if batch and not self._write([self._pending(item) for item in batch]):
                self.unrecorded += len(batch)
        if self._conn is not None:
            self._conn.close()

    def close(self, grace: float) -> None:
        """Write what is left (for up to ``grace`` seconds if the database is down)."""
        if not self.is_alive():
            return
        self._deadline = time.monotonic() + grace
        self.todo.put(_END)
        self.join()
        left = self.unrecorded + self.todo.qsize()
        if left:
            self.say(f"flow: {left} sent calls were not recorded pending (the database did not"
                     " answer); each is recorded when a worker takes it")  # fmt: skip

    def _pending(self, item: tuple[Any, ...]) -> Pending:
        from shellflow.model.call_writes import Pending

        call_id, args, kwargs, flow, parent, sent = item
        return Pending(
            call_id=call_id, name=self.route.name, socket_id=self.route.socket_id,
            task_id=self.route.task_id, flow=flow, parent=parent,
            args=json.dumps({"args": args, "kwargs": kwargs}, default=str),
            sent=datetime.fromtimestamp(sent, UTC),
        )  # fmt: skip

    def _write(self, rows: list[Pending]) -> bool:
        """Write the rows, again after a failure until they are in or the deadline passes."""
        from shellflow.model.call_writes import insert_pending_many
        from shellflow.model.listing import Reader

        pause = BACKOFF_FIRST
        said = False
        raced = False
        while True:
            try:
                if self._conn is None:
                    self._conn = Reader(self.db, writable=True)
                with self._conn.transaction():
                    insert_pending_many(self._conn, rows)
                self.recorded += len(rows)
                if said:
                    self.say("flow: the database answers again; the stream's calls are recorded")
                return True
            except Exception as exc:
                self._drop_connection()
                if not raced and _lost_a_race(exc):
                    raced = True  # written again at once, unlinked: not an outage to report
                    continue
                if self._deadline is not None and time.monotonic() + pause > self._deadline:
                    return False
                if not said:
                    reason = " ".join(str(exc).split())[:200] or type(exc).__name__
                    self.say(f"flow: cannot record the stream's calls pending ({reason});"
                             " trying again")  # fmt: skip
                    said = True
                time.sleep(pause)
                pause = min(pause * 2, BACKOFF_MAX)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to close
                conn.close()


def _lost_a_race(exc: BaseException) -> bool:
    """The socket was deleted while its calls were being recorded: PostgreSQL checked the
    row's foreign key after the deleting transaction committed. Written again, the row is
    left unlinked (``insert_pending_many`` links only a socket that still exists)."""
    return any(kind.__name__ == "IntegrityError" for kind in type(exc).__mro__)
