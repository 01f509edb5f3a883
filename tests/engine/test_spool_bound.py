"""The record spool is bounded: while the database is away, a worker's processes spool up to
the bound and then wait (their calls unacknowledged, so the rest wait in the broker); when
the database is back, every record is committed and none was dropped."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from shellflow.engine.records.recorder import Recorder
from shellflow.engine.records.spool import MAX_BYTES, max_bytes
from shellflow.engine.records.spool_writer import SpoolWriter
from shellflow.engine.records.store import RecordStore
from shellflow.errors import UsageError
from tests.engine.test_spool import _rows, _spool_calls
from tests.waiting import poll

LIMIT = 4000  # bytes: a handful of calls' records
CALLS = 40  # far more records than the bound holds


def _on_disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.spool"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_full_spool_holds_its_process_back_and_loses_nothing(
    initialised_db: str, tmp_path: Path
) -> None:
    path = initialised_db.removeprefix("sqlite:///")
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # the database is away for the writer
    writer = SpoolWriter(tmp_path / "spool", RecordStore(initialised_db), limit=LIMIT)
    recorder = Recorder(initialised_db, writer.spool())
    writer.start()
    ids = [f"bound-{i}" for i in range(CALLS)]
    pid = os.fork()
    if pid == 0:  # a pool process: one call after another, each record spooled at its end
        try:
            _spool_calls(recorder, ids)
            recorder.close()
        finally:
            os._exit(0)
    try:
        # It spools until the next record would not fit, then waits.
        poll(lambda: writer.backlog.waiting > LIMIT // 2, timeout=60)
        time.sleep(1.0)  # a chance to go past the bound, were it not held
        assert writer.backlog.waiting <= LIMIT
        assert _on_disk(writer.folder) <= LIMIT
        assert os.waitpid(pid, os.WNOHANG) == (0, 0)  # still held: its calls not done
        assert _rows(initialised_db) == {}
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    _, status = os.waitpid(pid, 0)  # the database is back: it drains, the process goes on
    assert status == 0
    writer.stop()
    rows = _rows(initialised_db)
    assert sorted(rows) == sorted(ids)
    assert {state for state, _ in rows.values()} == {"finished"}


def test_the_bound_is_a_setting() -> None:
    assert max_bytes({}) == MAX_BYTES == 64 << 20
    assert max_bytes({"SHELLFLOW_SPOOL_MAX_BYTES": "1000"}) == 1000
    for bad in ("0", "-1", "1e6", "lots"):
        with pytest.raises(UsageError, match="SHELLFLOW_SPOOL_MAX_BYTES"):
            max_bytes({"SHELLFLOW_SPOOL_MAX_BYTES": bad})
