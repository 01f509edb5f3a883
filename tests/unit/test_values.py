"""The one value rule (``shellflow.values``) and the encoders that must never raise on a bad
value: what the rule accepts round-trips through JSON and UTF-8 exactly; the recorder and
the live events write any value; one call's bad record never reaches the next call's."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shellflow import values
from shellflow.client.stream_input import BadRecord, read_records, record_value
from shellflow.client.values import input_value, parse_value

FEW = settings(max_examples=200, deadline=None)
text = st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
scalars = st.one_of(st.none(), st.booleans(), st.floats(), text,
                    st.integers(min_value=-(2**80), max_value=2**80))  # fmt: skip
anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(text, inner, max_size=3), max_leaves=10)  # fmt: skip


def _nested(levels: int) -> Any:
    """``levels`` arrays, one in the other."""
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


@FEW
@given(anything)
def test_what_the_rule_accepts_round_trips(value: Any) -> None:
    if values.problem(value) is not None:
        return
    encoded = json.dumps(value, ensure_ascii=False).encode("utf-8")  # no surrogate raises
    assert json.loads(encoded) == value
    assert b"\0" not in encoded


@FEW
@given(anything)
def test_the_rule_refuses_what_cannot_round_trip(value: Any) -> None:
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
        exact = json.loads(encoded) == value and "\\u0000" not in encoded.decode()
    except (ValueError, UnicodeEncodeError):
        exact = False
    if not exact:
        assert values.problem(value) is not None


def test_limits_are_named() -> None:
    assert values.problem(_nested(64)) is None
    assert values.problem(_nested(65)) == "nested deeper than 64 levels"
    assert values.problem(_nested(200_000)) == "nested deeper than 64 levels"
    assert values.problem(2**64 - 1) is None and values.problem(-(2**63)) is None
    assert values.problem(2**64) == "an integer beyond 64 bits"
    assert values.problem(math.inf) == "a number beyond the float range"
    assert "NaN" in str(values.problem([math.nan]))
    assert "over the 8 MiB limit" in str(values.problem("x" * (8 << 20)))
    assert "not a JSON value (set)" in str(values.problem({"a": {1}}))
    assert "NUL" in str(values.problem({"a\0": 1}))


@FEW
@given(st.binary(max_size=16))
def test_input_is_utf8_or_refused_at_its_first_bad_byte(data: bytes) -> None:
    try:
        expected = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        with pytest.raises(
            values.ValueRefused, match=f"record 7: not UTF-8 text at byte {exc.start + 1} "
        ):
            input_value(data, "record 7")
        return
    try:
        got = input_value(data, "record 7")
    except values.ValueRefused as refused:  # NUL, or JSON beyond a limit (1e400)
        assert values.problem(parse_value(expected)) is not None, refused
        return
    assert got == expected or json.loads(expected) == got


def test_a_stream_refuses_non_utf8_and_overlong_records() -> None:
    bad = record_value(b"caf\xe9", 3, json_lines=False)
    assert isinstance(bad, BadRecord) and str(bad).startswith("record 3: not UTF-8 text at byte 4")
    assert isinstance(record_value(b"NaN", 1, json_lines=True), BadRecord)
    assert record_value(b"NaN", 1, json_lines=False) == "NaN"
    long = io.BytesIO(b"a\n" + b"z" * ((8 << 20) + 10) + b"\nnever read\n")
    records = list(read_records(long, nul=False))
    assert records[0] == b"a" and len(records) == 2
    assert "longer than 8 MiB" in str(record_value(records[1], 2, json_lines=False))


hostile = st.one_of(anything, st.just(_nested(100_000)), st.just(10**5000),
                    st.just({"o": object()}))  # fmt: skip


@FEW
@given(hostile)
def test_the_recorder_writes_any_value(value: Any) -> None:
    from shellflow.engine.records.recorder import _json

    stored = _json(value)
    stored.encode("utf-8")  # storable text, always
    assert "\0" not in stored
    if values.problem(value) is None:
        assert json.loads(stored) == value


@FEW
@given(hostile, text)
def test_live_events_encode_any_value(value: Any, line: str) -> None:
    from datetime import UTC, datetime

    from shellflow.engine.records.events import Stored, encoded

    now = datetime.now(UTC)
    for state, data in (("postrun", value), ("failure", line), ("log", line)):
        for _, payload in encoded("room", Stored("i", "c", "s", None, state, now, data)):
            json.loads(payload.decode("utf-8"))


def test_one_bad_record_fails_nothing_else(tmp_path: Path) -> None:
    """The recorder of one worker process: a call whose values are not text, then another
    call; each is spooled on its own, the first readable, the second without the first."""
    from shellflow.engine.records.recorder import CallStart, Recorder
    from shellflow.engine.records.spool import Spool

    recorder = Recorder(f"sqlite:///{tmp_path / 'db.sqlite'}", Spool(tmp_path / "spool"))

    def call(call_id: str, arg: Any, result: Any, printed: list[str], error: str = "") -> None:
        start = CallStart(call_id=call_id, socket_id=None, task_id=None, name="s",
                          args={"args": [arg], "kwargs": {}}, flow=None, parent=None,
                          hostname="h", worker="w")  # fmt: skip
        recorder.started(start)
        if error:
            recorder.failed(call_id, "s", error, "trace \ud800\0", printed)
        else:
            recorder.finished(call_id, "s", result, printed)

    call("one", "secret \ud800", {"r": "\udce9"}, ["x\0y", "\udcff"])
    call("two", "a\0b", _nested(100_000), [], error="bad\0\ud800")
    call("three", "clean", "fine", ["ok"])
    lines = b"".join(p.read_bytes() for p in sorted((tmp_path / "spool").iterdir())).splitlines()
    assert len(lines) == 3
    records = [json.loads(line.split(b" ", 1)[1]) for line in lines]
    assert b"secret" not in lines[1] and b"secret" not in lines[2]
    assert records[2]["r"][0][0] == "three"
    logs = [entry[4] for entry in records[0]["l"]]
    assert logs == ["x\\x00y", "\\udcff"]
    assert records[1]["r"][0][13] == "bad\\x00\\ud800"  # the error, escaped
    for record in records:  # what is stored (live events' data is only published)
        stored = {key: record[key] for key in ("r", "u", "e", "l")}
        json.dumps(stored, ensure_ascii=False).encode("utf-8")
        cells = [cell for key in stored for entry in stored[key] for cell in entry]
        assert not any(isinstance(cell, str) and "\0" in cell for cell in cells)
