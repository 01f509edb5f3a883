"""The one owner of the ``call`` table (``shellflow.model.call_writes``), on SQLite and on the
real PostgreSQL: a pending row, a cancel and a worker's records write the same row by the
same rules and in one timestamp format, which the ORM reads back as the times written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shellflow.engine.records.store import RecordStore
from shellflow.model import call_writes
from shellflow.model.call_writes import CALL_COLUMNS, CANCELLED_NAME
from shellflow.model.listing import Reader, reader, writer
from shellflow.model.urls import dialect_of

SENT = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
SQLITE_TEXT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


def _pending(url: str, call_id: str, sent: datetime = SENT) -> bool:
    with writer(url) as conn:
        return call_writes.insert_pending(
            conn, call_id=call_id, name="w.echo", socket_id=None, task_id=None, flow=call_id,
            parent=None, args='{"args": [], "kwargs": {}}', sent=sent,
        )  # fmt: skip


def _worker_row(call_id: str, state: str, when: datetime) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(CALL_COLUMNS)
    row.update(id=call_id, created=when, lastupdated=when, name="w.echo", state=state,
               celeryid=call_id, tracking=call_id, started=when, hostname="here")  # fmt: skip
    if state == "finished":
        row.update(finished=when, result=json.dumps(1))
    return row


def _commit(url: str, *rows: dict[str, Any]) -> None:
    """Commit call rows as a worker's spool writer does: spooled lines, absorbed, flushed."""
    store = RecordStore(url)
    dialect = dialect_of(url)
    try:
        store.absorb(*(
            json.dumps({"r": [call_writes.call_values(dialect, row)]}, default=str).encode()
            for row in rows
        ))  # fmt: skip
        store.flush(patience=1)
    finally:
        store.close()


def _call(url: str, call_id: str) -> dict[str, Any]:
    """The call as the ORM reads it (aware UTC datetimes)."""
    from shellflow.model.db import session_scope
    from shellflow.model.tables import Call

    with session_scope(url) as session:
        call = session.get(Call, call_id)
        assert call is not None, call_id
        return call.to_dict()


def _events(url: str, call_id: str) -> list[tuple[str, str]]:
    with reader(url) as conn:
        rows = conn.query("SELECT name, note FROM event WHERE call_id = ? ORDER BY name", [call_id])
    return [(str(name), str(note)) for name, note in rows]


def test_a_pending_row_is_completed_by_the_workers_record(initialised_db: str) -> None:
    assert _pending(initialised_db, "c1") is True
    assert _pending(initialised_db, "c1", SENT + timedelta(seconds=9)) is False  # kept
    pending = _call(initialised_db, "c1")
    assert (pending["state"], pending["created"], pending["started"]) == ("pending", SENT, None)
    ran = SENT + timedelta(seconds=2)
    _commit(initialised_db, _worker_row("c1", "finished", ran))
    done = _call(initialised_db, "c1")
    assert done["state"] == "finished"
    assert done["created"] == SENT  # the time it was sent: the upsert keeps it
    assert (done["started"], done["finished"], done["lastupdated"]) == (ran, ran, ran)


def test_a_workers_record_that_came_first_is_kept(initialised_db: str) -> None:
    _commit(initialised_db, _worker_row("c2", "running", SENT))
    assert _pending(initialised_db, "c2") is False
    assert _call(initialised_db, "c2")["state"] == "running"


def test_a_streams_batch_of_pending_rows_keeps_what_came_first(initialised_db: str) -> None:
    _commit(initialised_db, _worker_row("b2", "finished", SENT))
    batch = [
        call_writes.Pending(
            f"b{i}",
            "w.echo",
            "no-such-socket",
            "no-such-task",
            "flow-b",
            None,
            json.dumps({"args": [i], "kwargs": {}}),
            SENT,
        )
        for i in range(1, 1 + call_writes.PENDING_PER_STATEMENT + 2)  # two statements
    ]
    with writer(initialised_db) as conn, conn.transaction():
        written = call_writes.insert_pending_many(conn, batch)
    assert written == len(batch) - 1  # b2's worker record is kept
    assert _call(initialised_db, "b2")["state"] == "finished"
    with reader(initialised_db) as conn:
        rows = conn.query(
            "SELECT count(*), count(socket_id), count(task_id), min(state), max(state)"
            " FROM call WHERE tracking = 'flow-b'"
        )
    # Linked to no socket that is not there (deleted meanwhile), as a worker's records are.
    assert rows == [(len(batch) - 1, 0, 0, "pending", "pending")]
    first = _call(initialised_db, "b1")
    assert (first["created"], first["started"], first["args"]) == (
        SENT, None, json.dumps({"args": [1], "kwargs": {}}),
    )  # fmt: skip


def test_cancel_records_fresh_and_pending_calls_and_leaves_taken_ones(
    initialised_db: str,
) -> None:
    _pending(initialised_db, "queued")
    _commit(initialised_db, _worker_row("taken", "running", SENT),
            _worker_row("done", "finished", SENT))  # fmt: skip
    now = SENT + timedelta(minutes=1)
    with writer(initialised_db) as conn:
        cancelled = call_writes.record_cancelled(
            conn, ["fresh", "taken", "queued", "done", "fresh"], "stop", now
        )
    assert cancelled == ["fresh", "queued"]
    fresh, queued = _call(initialised_db, "fresh"), _call(initialised_db, "queued")
    assert (fresh["state"], fresh["name"], fresh["tracking"]) == (
        "revoked",
        CANCELLED_NAME,
        "fresh",
    )
    assert (fresh["created"], fresh["finished"], fresh["started"]) == (now, now, None)
    assert (queued["state"], queued["created"], queued["finished"]) == ("revoked", SENT, now)
    assert queued["started"] is None
    assert _call(initialised_db, "taken")["state"] == "running"
    assert _call(initialised_db, "done")["state"] == "finished"
    for call_id in ("fresh", "queued"):
        assert _events(initialised_db, call_id) == [("revoked", "stop")]
    assert _events(initialised_db, "taken") == _events(initialised_db, "done") == []


def test_a_cancel_is_one_transaction(initialised_db: str) -> None:
    """A cancel that fails half-way leaves no row without its event."""
    _pending(initialised_db, "queued")

    class Failing(Reader):
        def execute(self, sql: str, params: Any = ()) -> int:
            if sql.startswith("INSERT INTO event"):
                raise RuntimeError("refused")
            return super().execute(sql, params)

    conn = Failing(initialised_db, writable=True)
    try:
        with pytest.raises(RuntimeError):
            call_writes.record_cancelled(conn, ["fresh", "queued"], "stop")
    finally:
        conn.close()
    assert _call(initialised_db, "queued")["state"] == "pending"
    with reader(initialised_db) as read:
        assert read.query("SELECT count(*) FROM call WHERE id = 'fresh'")[0][0] == 0


def test_a_redelivery_is_counted_once_per_delivery(initialised_db: str) -> None:
    dialect = dialect_of(initialised_db)
    store = RecordStore(initialised_db)
    row = call_writes.call_values(dialect, _worker_row("again", "running", SENT))

    def marker(n: int) -> tuple[Any, ...]:
        return (f"marker-{n}", SENT + timedelta(seconds=n), "redelivered", "again", "again")

    try:
        assert store.count_redelivery(row, marker(1)) == (None, 0)
        previous, before = store.count_redelivery(row, marker(2))
    finally:
        store.close()
    assert (previous, before) == (("running", None), 1)
    assert _events(initialised_db, "again") == [("redelivered", "again")] * 2


def test_every_writer_stores_one_time_format(initialised_db: str) -> None:
    """On SQLite the text of every time column is SQLAlchemy's: the rows compare and sort."""
    if dialect_of(initialised_db) != "sqlite":
        pytest.skip("PostgreSQL stores times as timestamptz, not text")
    _pending(initialised_db, "pending")
    _commit(initialised_db, _worker_row("worker", "finished", SENT))
    with writer(initialised_db) as conn:
        call_writes.record_cancelled(conn, ["cancelled"], "stop")
    with reader(initialised_db) as conn:
        times = conn.query("SELECT created, lastupdated, started, finished FROM call")
        times += conn.query("SELECT created, created, NULL, NULL FROM event")
    assert len(times) == 4
    for value in (v for row in times for v in row if v is not None):
        assert SQLITE_TEXT.match(value), value


def test_the_light_path_writes_calls_without_sqlalchemy(initialised_db: str) -> None:
    """``flow task run --async`` and a cancel run from a cold process: no ORM import."""
    code = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from shellflow.model import call_writes\n"
        "from shellflow.model.listing import writer\n"
        "with writer(sys.argv[1]) as conn:\n"
        "    assert call_writes.insert_pending(conn, call_id='cold', name='n', socket_id=None,"
        " task_id=None, flow='cold', parent=None, args='[]', sent=datetime.now(UTC))\n"
        "    assert call_writes.record_cancelled(conn, ['cold'], 'stop') == ['cold']\n"
        "print('\\n'.join(sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, initialised_db], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not [m for m in proc.stdout.split() if m.split(".")[0] in ("sqlalchemy", "celery")]
