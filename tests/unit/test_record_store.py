"""The record store holds no lock while a write waits to be retried (SQLite files).

While the database is away, the spool writer's flush retries for seconds; absorbing more
lines, dropping them or closing the store at shutdown must not wait for those sleeps, and
what was buffered must still be committed, in the order it was made, once the database is
back.
"""

from __future__ import annotations

import json
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shellflow.engine.records.store import RecordStore, RecordsUnavailable
from shellflow.model.call_writes import CALL_COLUMNS, call_values
from shellflow.model.listing import reader
from tests import templates
from tests.waiting import poll

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# No timing thresholds: "does not wait" is checked by order (the flush, given far more
# patience than any wait here, is still retrying when the call returns).


def _line(call_id: str, state: str, n: int, event: str | None = None) -> bytes:
    when = T0 + timedelta(seconds=n)
    row: dict[str, Any] = dict.fromkeys(CALL_COLUMNS)
    row.update(id=call_id, created=when, lastupdated=when, name="store.t", state=state,
               celeryid=call_id, started=when)  # fmt: skip
    if state != "running":
        row["finished"] = when
    record: dict[str, Any] = {"r": [call_values("sqlite", row)]}
    if event:
        record["e"] = [(event, str(when), "retry", event, call_id)]
    return json.dumps(record).encode()


def _database_comes_back(path: Path) -> None:
    """The folder and its database appear at once, by one rename.

    A retrying flush that connected between a mkdir and the end of a copy would open a
    half-written file ("database disk image is malformed"): that is a test artefact, not
    a database coming back.
    """
    staging = path.parent.with_name(path.parent.name + ".staging")
    staging.mkdir()
    shutil.copyfile(templates.sqlite(), staging / path.name)
    staging.rename(path.parent)


def _flushing(store: RecordStore, patience: float) -> tuple[threading.Thread, list[BaseException]]:
    """A flush in the writer's thread; what it raised lands in the list."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            store.flush(patience=patience)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    # It has taken its batch out and is retrying (a private flag: there is no public one).
    poll(lambda: store._flushing, timeout=30, what="the flush to take its batch")
    return thread, raised


def _calls(path: Path) -> dict[str, str]:
    with reader(f"sqlite:///{path}") as conn:
        return {str(i): str(s) for i, s in conn.query("SELECT id, state FROM call")}


def test_absorbing_does_not_wait_for_a_flush_that_waits_to_retry(tmp_path: Path) -> None:
    path = tmp_path / "away" / "model.db"  # no folder yet: every connection fails
    store = RecordStore(f"sqlite:///{path}")
    store.absorb(_line("first", "finished", 1))
    thread, raised = _flushing(store, patience=20)
    try:
        store.absorb(_line("second", "finished", 2))
        assert thread.is_alive()  # still retrying: absorbing did not wait for it
        _database_comes_back(path)
        thread.join(10)
        assert not thread.is_alive() and raised == []
        assert _calls(path) == {"first": "finished"}  # its batch: what it had taken out
        store.flush(patience=1)
        assert _calls(path) == {"first": "finished", "second": "finished"}
    finally:
        store.close()


def test_discarding_does_not_wait_either(tmp_path: Path) -> None:
    path = tmp_path / "away" / "model.db"
    store = RecordStore(f"sqlite:///{path}")
    store.absorb(_line("first", "finished", 1))
    thread, raised = _flushing(store, patience=60)
    try:
        store.absorb(_line("second", "finished", 2))
        store.discard()
        assert thread.is_alive()  # still retrying: discarding did not wait for it
        store.close()  # ends the retrying flush
        thread.join(30)
        assert [type(exc) for exc in raised] == [RecordsUnavailable]
        _database_comes_back(path)
        store.flush(patience=1)  # the batch that failed is kept; what was discarded is not
        assert _calls(path) == {"first": "finished"}
    finally:
        store.close()


def test_closing_ends_a_flush_that_waits_to_retry_and_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "away" / "model.db"
    store = RecordStore(f"sqlite:///{path}")
    store.absorb(_line("first", "finished", 1))
    thread, raised = _flushing(store, patience=120)
    store.close()
    thread.join(30)  # far less than its patience: closing ended its wait
    assert not thread.is_alive()
    assert [type(exc) for exc in raised] == [RecordsUnavailable]
    _database_comes_back(path)
    store.flush(patience=1)  # the records were kept: a later flush commits them
    store.close()
    assert _calls(path) == {"first": "finished"}


def test_a_kept_batch_stays_ahead_of_lines_absorbed_meanwhile(tmp_path: Path) -> None:
    """A call's ended row, kept after a failed flush, is not replaced by a ``running`` row
    of the same call absorbed while that flush waited (a redelivery read later)."""
    path = tmp_path / "away" / "model.db"
    store = RecordStore(f"sqlite:///{path}")
    store.absorb(_line("c", "finished", 2, event="e-1"))
    thread, raised = _flushing(store, patience=1.5)
    store.absorb(_line("c", "running", 1, event="e-2"), _line("d", "running", 3))
    thread.join(10)
    assert [type(exc) for exc in raised] == [RecordsUnavailable]
    _database_comes_back(path)
    store.flush(patience=1)
    store.close()
    assert _calls(path) == {"c": "finished", "d": "running"}
    with reader(f"sqlite:///{path}") as conn:
        assert sorted(r[0] for r in conn.query("SELECT id FROM event")) == ["e-1", "e-2"]


@pytest.mark.parametrize("flushes", [2, 4])
def test_flushes_from_several_threads_commit_everything(tmp_path: Path, flushes: int) -> None:
    path = tmp_path / "away" / "model.db"
    store = RecordStore(f"sqlite:///{path}")
    threads = []
    for n in range(flushes):
        store.absorb(_line(f"c{n}", "finished", n))
        threads.append(_flushing(store, patience=20))
    _database_comes_back(path)
    for thread, raised in threads:
        thread.join(10)
        assert raised == []
    store.flush(patience=1)
    store.close()
    assert _calls(path) == {f"c{n}": "finished" for n in range(flushes)}
