"""A call's record is never dropped for its text, on SQLite and on the real PostgreSQL
(whose text cannot hold NUL): the recorder escapes NUL and lone surrogates in an error, a
traceback and printed lines, and the spool writer makes storable a line an older recorder
spooled with them, instead of dropping the call's whole record."""

from __future__ import annotations

import json
from pathlib import Path

from shellflow.engine.records.recorder import CallStart, Recorder
from shellflow.engine.records.spool import Spool
from shellflow.engine.records.spool_writer import SpoolWriter
from shellflow.engine.records.store import RecordStore
from shellflow.model.listing import reader
from tests.engine.test_spool import _dead_pid


def _start(call_id: str) -> CallStart:
    return CallStart(call_id=call_id, socket_id=None, task_id=None, name="values.rec",
                     args={"args": ["a\0b \ud800"], "kwargs": {}}, flow=call_id, parent=None,
                     hostname="here", worker="values@here")  # fmt: skip


def _commit(url: str, root: Path) -> None:
    writer = SpoolWriter(root, RecordStore(url))
    writer.start()
    writer.stop()


def test_text_with_nul_is_recorded_escaped(initialised_db: str, tmp_path: Path) -> None:
    root = tmp_path / "spool"
    recorder = Recorder(initialised_db, spool=Spool(root / str(_dead_pid())))
    recorder.started(_start("failed-nul"))
    recorder.failed("failed-nul", "values.rec", "ValueError: bad\0news \udce9", "tb\0",
                    ["out\0put", "\udcff"])  # fmt: skip
    recorder.started(_start("printed-nul"))
    recorder.finished("printed-nul", "values.rec", {"k": "v"}, ["line\0one"])
    _commit(initialised_db, root)
    with reader(initialised_db) as conn:
        calls = conn.query("SELECT id, state, error, traceback, args FROM call ORDER BY id")
        logs = conn.query("SELECT oid, text FROM log ORDER BY oid, text")
    assert [row[:4] for row in calls] == [
        ("failed-nul", "failed", "ValueError: bad\\x00news \\udce9", "tb\\x00"),
        ("printed-nul", "finished", None, None),
    ]
    assert json.loads(calls[0][4])["args"] == ["a\0b \ud800"]  # JSON keeps it exactly
    assert logs == [("failed-nul", "\\udcff"), ("failed-nul", "out\\x00put"),
                    ("printed-nul", "line\\x00one")]  # fmt: skip


def test_a_line_an_older_recorder_spooled_with_nul_is_kept(
    initialised_db: str, tmp_path: Path
) -> None:
    root = tmp_path / "spool"
    folder = root / str(_dead_pid())
    recorder = Recorder(initialised_db, spool=Spool(folder))
    recorder.started(_start("old"))
    recorder.finished("old", "values.rec", "fine", ["x"])
    (spool_file,) = folder.glob("*.spool")
    stamp, line = spool_file.read_bytes().rstrip(b"\n").split(b" ", 1)
    record = json.loads(line)
    record["l"] = [[*entry[:4], "raw\0nul", *entry[5:]] for entry in record["l"]]
    record["r"][0][13] = "error\0text"  # as the recorder wrote text before it escaped it
    spool_file.write_bytes(stamp + b" " + json.dumps(record).encode() + b"\n")
    _commit(initialised_db, root)
    # SQLite stores NUL as it is; PostgreSQL cannot, so the line is stored escaped.
    nul = "\0" if initialised_db.startswith("sqlite") else "\\x00"
    with reader(initialised_db) as conn:
        assert conn.query("SELECT id, error FROM call") == [("old", f"error{nul}text")]
        assert conn.query("SELECT text FROM log") == [(f"raw{nul}nul",)]
