"""The record spool is bounded: while the database is away, a worker's processes spool up to
the bound and then wait (their calls unacknowledged, so the rest wait in the broker); when
the database is back, every record is committed and none was dropped."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from shellflow.engine.records.recorder import Recorder
from shellflow.engine.records.spool import MAX_BYTES, max_bytes
from shellflow.engine.records.spool_writer import SpoolWriter
from shellflow.engine.records.store import RecordStore
from shellflow.errors import UsageError
from shellflow.tui.data.network import queue_depths
from tests.conftest import FlowRunner, _flow_executable
from tests.engine.conftest import Deployment, build_network, deploy
from tests.engine.test_pipelines import _bash
from tests.engine.test_spool import _rows, _spool_calls
from tests.waiting import poll

LIMIT = 4000  # bytes: a handful of calls' records
CALLS = 40  # far more records than the bound holds


def _on_disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.spool"))


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


def test_a_worker_with_a_full_spool_leaves_calls_in_the_broker(flow: FlowRunner) -> None:
    """The embedded default with its database locked: the worker spools up to its bound,
    then takes no more calls (they wait in the queue); unlocked, all of them run and are
    recorded."""
    with deploy("embedded", flow) as d:
        n = build_network(d)
        d.env["SHELLFLOW_SPOOL_MAX_BYTES"] = str(LIMIT)
        d.start_worker(n["processor"], concurrency=1)
        ready = _bash(d, f"echo 0 | $FLOW task run --stream -s {n['add_two']} two:=1")
        assert ready.returncode == 0 and ready.stdout == "1\n", ready.stderr
        d.wait_for("SELECT count(*) FROM call WHERE state = 'finished'", (), [(1,)])
        spool = Path(d.env["SHELLFLOW_HOME"]) / "spool"
        committed = _on_disk(spool)  # the file goes on with the next records
        lock = sqlite3.connect(d.env["SHELLFLOW_DB"].removeprefix("sqlite:///"),
                               isolation_level=None)  # fmt: skip
        lock.execute("BEGIN EXCLUSIVE")  # readers go on (WAL); the worker cannot write
        records = Path(d.env["SHELLFLOW_HOME"]) / "records.txt"
        records.write_text("".join(f"{i}\n" for i in range(CALLS)))
        stream = subprocess.Popen(
            [*_flow_executable(), "task", "run", "--stream", "-j", str(CALLS), "-s",
             n["add_two"], "two:=1"], stdin=records.open(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env={**os.environ, **d.env}, text=True,
        )  # fmt: skip
        try:
            poll(lambda: _on_disk(spool) - committed > LIMIT // 2, timeout=60,
                 what="the worker's spool to fill")  # fmt: skip
            time.sleep(1.0)  # a chance to take more calls, were it not held
            assert _on_disk(spool) - committed <= LIMIT
            # Only what the bound holds ran; the rest wait in the broker, none dropped.
            depth = queue_depths(d.env.get("SHELLFLOW_BROKER") or _broker(d), [n["add_two"]])
            assert depth[n["add_two"]] >= CALLS // 2, depth
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        out, err = stream.communicate(timeout=180)
        assert stream.returncode == 0, err
        assert out.split() == [str(i + 1) for i in range(CALLS)]
        d.wait_for("SELECT count(*) FROM call WHERE state = 'finished'", (), [(CALLS + 1,)],
                   timeout=60)  # fmt: skip


def _broker(d: Deployment) -> str:
    from shellflow.config import load_settings

    return load_settings(environ=d.env).broker


def test_a_process_killed_holding_the_count_leaves_it_usable() -> None:
    """A pool process killed (kill -9) while it counts its record must not hold the others
    back for ever: the count's lock is one the kernel releases when its holder dies."""
    import signal
    import threading

    from shellflow.engine.records.spool import Backlog

    backlog = Backlog(LIMIT)
    backlog.reserve(100)
    pid = os.fork()
    if pid == 0:
        with backlog._locked():
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)
    counted = threading.Thread(target=backlog.reserve, args=(200,), daemon=True)
    counted.start()
    counted.join(timeout=30)
    assert not counted.is_alive()
    assert backlog.waiting == 300
    backlog.committed(300)
    assert backlog.waiting == 0
