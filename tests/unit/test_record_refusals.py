"""A worker's record completes only the call recorded under its id (SQLite and PostgreSQL).

``shellflow.engine.records.store`` judges each batch (``call_writes.refused_rows``) and the
upsert's ``WHERE`` holds the same rules in the database: a record of another task or other
arguments is refused, an ended call is never reopened, and the same record written twice
(a spool drained again, a message delivered twice) changes nothing and is not called forged.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shellflow.engine.records.store import RecordStore
from shellflow.model.call_writes import CALL_COLUMNS, Pending, call_values, insert_pending_many
from shellflow.model.listing import reader, writer
from shellflow.model.urls import dialect_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REFUSED = "refused, not merged"


def _line(db: str, call_id: str, state: str, args: Any, name: str = "s.echo", n: int = 1,
          output: str | None = None) -> bytes:  # fmt: skip
    """A spooled line: the call's row as a worker writes it, and what it printed."""
    when = T0 + timedelta(seconds=n)
    row: dict[str, Any] = dict.fromkeys(CALL_COLUMNS)
    row.update(id=call_id, created=when, lastupdated=when, name=name, state=state,
               celeryid=call_id, started=when, tracking=call_id,
               args=json.dumps(args, separators=(",", ":")))  # fmt: skip
    if state != "running":
        row["finished"] = when
        row["result"] = json.dumps(args["args"][:1])
    record: dict[str, Any] = {"r": [call_values(dialect_of(db), row)]}
    if output is not None:
        record["l"] = [(f"log-{call_id}-{n}", str(when), call_id, "call", output, "stdout", False)]
    return json.dumps(record, default=str).encode()


def _pending(db: str, call_id: str, args: Any, name: str = "s.echo") -> None:
    with writer(db) as conn:
        insert_pending_many(conn, [Pending(call_id, name, None, None, call_id, None,
                                           json.dumps(args), T0)])  # fmt: skip


def _row(db: str, call_id: str) -> tuple[Any, ...]:
    with reader(db) as conn:
        return conn.query("SELECT state, name, args, result FROM call WHERE id = ?", [call_id])[0]


def _lines_of(db: str, call_id: str) -> list[str]:
    with reader(db) as conn:
        return [str(t) for (t,) in conn.query("SELECT text FROM log WHERE oid = ?", [call_id])]


@pytest.fixture
def store(initialised_db: str) -> Any:
    store = RecordStore(initialised_db)
    yield store
    store.close()


def _write(store: RecordStore, *lines: bytes) -> None:
    store.absorb(*lines)
    store.flush(patience=5)


REAL = {"args": ["real"], "kwargs": {"n": 1}}
FORGED = {"args": ["forged"], "kwargs": {"n": 1}}


def test_the_callers_pending_row_is_completed_by_the_same_call_only(
    store: RecordStore, caplog: pytest.LogCaptureFixture
) -> None:
    db = store.url
    _pending(db, "c1", REAL)
    with caplog.at_level(logging.WARNING):
        _write(store, _line(db, "c1", "finished", FORGED, output="forged line"))
    assert _row(db, "c1")[0] == "pending"
    assert _lines_of(db, "c1") == []  # nothing of the forged run is attached to the call
    assert "the call was sent with other arguments" in caplog.text
    _write(store, _line(db, "c1", "finished", REAL, n=2, output="real line"))
    assert _row(db, "c1")[0] == "finished"
    assert _lines_of(db, "c1") == ["real line"]


def test_an_ended_call_is_never_reopened_nor_merged(
    store: RecordStore, caplog: pytest.LogCaptureFixture
) -> None:
    db = store.url
    done = _line(db, "c2", "finished", REAL)
    _write(store, done)
    before = _row(db, "c2")
    with caplog.at_level(logging.WARNING):
        _write(store, done)  # drained again: the very row, not a forgery
        assert REFUSED not in caplog.text
        _write(store, _line(db, "c2", "running", REAL, n=3))  # a redelivery's running row
        _write(store, _line(db, "c2", "finished", FORGED, n=4))
        _write(store, _line(db, "c2", "failed", REAL, name="s.other", n=5))
    assert _row(db, "c2") == before
    assert caplog.text.count(REFUSED) == 3


def test_two_records_of_one_id_in_one_batch_keep_the_calls_own(store: RecordStore) -> None:
    db = store.url
    _pending(db, "c3", REAL)
    _write(store, _line(db, "c3", "finished", REAL, output="real"),
           _line(db, "c3", "finished", FORGED, n=2, output="forged"))  # fmt: skip
    assert _row(db, "c3")[0:2] == ("finished", "s.echo")
    assert json.loads(_row(db, "c3")[2]) == REAL
