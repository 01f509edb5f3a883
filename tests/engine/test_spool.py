"""The record spool: what a worker's processes append is committed by its writer, in
batches, on SQLite and on the real PostgreSQL; leftovers of a dead worker are committed by
the next one; nothing complete is lost and nothing incomplete is half-written."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from shellflow.engine.records.events import Stored
from shellflow.engine.records.recorder import CallStart, Recorder
from shellflow.engine.records.spool import Spool, SpoolFolder, leftovers, worker_folder
from shellflow.engine.records.spool_writer import SpoolWriter
from shellflow.engine.records.store import RecordStore
from shellflow.model.listing import reader


def _start(call_id: str) -> CallStart:
    return CallStart(
        call_id=call_id, socket_id=None, task_id=None, name="spool.echo",
        args={"args": [call_id], "kwargs": {}}, flow=call_id, parent=None,
        hostname="here", worker="spool@here",
    )  # fmt: skip


def _rows(url: str) -> dict[str, tuple[Any, ...]]:
    with reader(url) as conn:
        rows = conn.query("SELECT id, state, result FROM call WHERE name = ?", ["spool.echo"])
    return {row[0]: (row[1], row[2]) for row in rows}


def _spool_calls(recorder: Recorder, ids: list[str], output: list[str] = ()) -> None:  # type: ignore[assignment]
    for call_id in ids:
        recorder.started(_start(call_id))
        recorder.finished(call_id, "spool.echo", {"echo": call_id}, list(output))


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_forked_processes_records_are_committed_and_published(
    initialised_db: str, tmp_path: Path
) -> None:
    published: list[Stored] = []
    writer = SpoolWriter(
        tmp_path / "spool", RecordStore(initialised_db, on_stored=published.extend)
    )
    recorder = Recorder(initialised_db, writer.spool())
    writer.start()
    children = []
    for n in range(3):  # as a prefork pool does: each process its own spool file
        pid = os.fork()
        if pid == 0:
            try:
                _spool_calls(recorder, [f"c{n}-{i}" for i in range(20)], output=["printed"])
                recorder.close()
            finally:
                os._exit(0)
        children.append(pid)
    for pid in children:
        assert os.waitpid(pid, 0)[1] == 0
    writer.stop()
    rows = _rows(initialised_db)
    assert len(rows) == 60
    assert rows["c2-19"][0] == "finished"
    assert '"c2-19"' in rows["c2-19"][1]
    names = [event.state for event in published]
    assert names.count("postrun") == 60 and names.count("log") == 60
    assert not (tmp_path / "spool").exists() or not any((tmp_path / "spool").iterdir())


def test_a_dead_workers_spool_is_committed_by_the_next(initialised_db: str, tmp_path: Path) -> None:
    root = tmp_path / "spool"
    dead = root / str(_dead_pid())
    _spool_calls(Recorder(initialised_db, spool=Spool(dead)), ["left-1", "left-2"])
    assert _rows(initialised_db) == {}
    writer = SpoolWriter(root, RecordStore(initialised_db))
    writer.start()
    try:
        assert set(_rows(initialised_db)) == {"left-1", "left-2"}
        assert not dead.exists()
    finally:
        writer.stop()


def test_a_live_workers_folder_is_not_claimed(tmp_path: Path) -> None:
    live = worker_folder(tmp_path)
    live.mkdir()
    dead = worker_folder(tmp_path, _dead_pid())
    dead.mkdir()
    reused = tmp_path / f"{os.getpid()}-1"  # this pid, but a process started long before
    reused.mkdir()
    claimed = sorted(path.name for path in leftovers(tmp_path, tmp_path / "own"))
    assert claimed == sorted(f"{path.name}.claimed-own" for path in (dead, reused))
    assert live.exists()


def test_an_unfinished_write_is_dropped_and_the_lines_before_it_kept(
    initialised_db: str, tmp_path: Path
) -> None:
    root = tmp_path / "spool"
    dead = root / str(_dead_pid())
    _spool_calls(Recorder(initialised_db, spool=Spool(dead)), ["whole"])
    (spool_file,) = dead.iterdir()
    with open(spool_file, "ab") as f:
        f.write(b'{"r":[["half"')  # a process killed in the middle of its write
    writer = SpoolWriter(root, RecordStore(initialised_db))
    writer.start()
    writer.stop()
    assert set(_rows(initialised_db)) == {"whole"}
    assert not dead.exists()


def test_a_refused_or_unreadable_line_is_dropped_alone(initialised_db: str, tmp_path: Path) -> None:
    root = tmp_path / "spool"
    dead = root / str(_dead_pid())
    recorder = Recorder(initialised_db, spool=Spool(dead))
    _spool_calls(recorder, ["before"])
    recorder.event("no-such-call", "retry", "an event of a call that has no row")
    assert recorder.spool is not None
    recorder.spool.append(b"not a record\n")
    _spool_calls(recorder, ["after"])
    writer = SpoolWriter(root, RecordStore(initialised_db))
    writer.start()
    writer.stop()
    assert set(_rows(initialised_db)) == {"before", "after"}


def _stamped(stamp: int, record: bytes) -> bytes:
    return b"%016x %s\n" % (stamp, record)


def test_reading_resumes_from_the_last_commit(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(b"one\n")
    path = tmp_path / f"{os.getpid()}-1.spool"
    with path.open("ab") as half:  # a write caught half-way
        half.write(_stamped(time.monotonic_ns(), b"tw")[:-1])
    files = SpoolFolder(tmp_path)
    [(tail, offset, line)] = files.read()
    assert line == b"one"
    files.forget()  # that batch did not commit: read again
    assert [entry[2] for entry in files.read()] == [b"one"]
    files.committed(tail, offset)
    with path.open("ab") as rest:
        rest.write(b"o\n")
    spool.append(b"three\n")
    assert [entry[2] for entry in files.read()] == [b"two", b"three"]


def test_a_read_is_a_consistent_cut_in_the_order_of_writing(tmp_path: Path) -> None:
    """A line is read only with every line written before it, whichever file holds it."""
    (tmp_path / "100-1.spool").write_bytes(_stamped(20, b"effect") + _stamped(40, b"later"))
    (tmp_path / "200-1.spool").write_bytes(_stamped(10, b"cause") + _stamped(30, b"next"))
    (tmp_path / "300-1.spool").write_bytes(b'{"r": []}\n')  # spooled before lines had times
    files = SpoolFolder(tmp_path)
    assert [line for _, _, line in files.read(cut=25)] == [b'{"r": []}', b"cause", b"effect"]
    assert [line for _, _, line in files.read(cut=25)] == []  # the rest waits for its time
    assert [line for _, _, line in files.read(cut=35)] == [b"next"]
    files.forget()  # nothing committed: all of it again, in the order of writing
    assert [line for _, _, line in files.read()] == [
        b'{"r": []}',
        b"cause",
        b"effect",
        b"next",
        b"later",
    ]


def test_a_folder_this_process_claimed_before_is_tried_again(tmp_path: Path) -> None:
    """A drain the database held back leaves the folder claimed by its claimer, which
    tries it again (a folder another live process claimed stays that one's)."""
    own = worker_folder(tmp_path)  # this process, alive
    mine = tmp_path / f"{_dead_pid()}-1.claimed-{own.name}"
    mine.mkdir()
    other = worker_folder(tmp_path, os.getppid()).name  # another live process
    theirs = tmp_path / f"{_dead_pid()}-1.claimed-{other}"
    theirs.mkdir()
    assert [path.name for path in leftovers(tmp_path, own)] == [mine.name]


def test_the_agents_sweep_commits_what_dead_workers_of_any_processor_left(
    initialised_db: str, tmp_path: Path
) -> None:
    """``shellflow.engine.fleet.spools``: records of workers killed with no successor on
    the node (their processor moved away) are committed by the agent's sweep; a live
    worker's folder and another database's are left alone."""
    from shellflow.engine.fleet.spools import sweep
    from shellflow.engine.records.spool import spool_root

    home = tmp_path / "home"
    gone = [worker_folder(spool_root(home, initialised_db, name), _dead_pid())
            for name in ("moved.away", "other")]  # fmt: skip
    for n, folder in enumerate(gone):
        _spool_calls(Recorder(initialised_db, spool=Spool(folder)), [f"swept-{n}"])
    live = worker_folder(spool_root(home, initialised_db, "running"))
    _spool_calls(Recorder(initialised_db, spool=Spool(live)), ["live-1"])
    elsewhere = worker_folder(spool_root(home, initialised_db + "-other", "p"), _dead_pid())
    _spool_calls(Recorder(initialised_db, spool=Spool(elsewhere)), ["elsewhere-1"])
    assert _rows(initialised_db) == {}

    assert sweep([home], initialised_db) == 2
    assert set(_rows(initialised_db)) == {"swept-0", "swept-1"}
    assert _rows(initialised_db)["swept-0"][0] == "finished"
    assert not any(folder.exists() for folder in gone)
    assert live.exists() and elsewhere.exists()
    assert sweep([home], initialised_db) == 0  # nothing left to claim
