"""What ``flow`` prints: NDJSON, escaped tab-separated rows, and a table on a terminal only."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from shellflow.commands import output
from shellflow.commands.output import print_object, print_rows

COLUMNS = ["name", "note", "count", "active", "tags", "extra"]
ROWS = [
    {"name": "q1", "note": "a\tb\nc\rd\\e", "count": 3, "active": True, "tags": ["x", "y"]},
    {"name": "q2", "note": None, "count": 0, "active": False, "tags": [], "extra": {"k": 1}},
]


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the printers believe stdout is a terminal (a colour-capable one)."""
    monkeypatch.setattr(output, "stdout_is_tty", lambda: True)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "120")
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)


def test_json_rows_are_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    print_rows(COLUMNS, [*ROWS, {"name": "q3", "created": when}], as_json=True)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [json.loads(line) for line in lines[:2]] == ROWS
    assert json.loads(lines[2]) == {"name": "q3", "created": str(when)}
    assert len(lines) == 3 and err == ""


def test_tsv_rows_escape_separators(capsys: pytest.CaptureFixture[str]) -> None:
    print_rows(COLUMNS, ROWS, as_json=False)
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "q1\ta\\tb\\nc\\rd\\\\e\t3\ttrue\tx,y\t",
        'q2\t\t0\tfalse\t\t{"k":1}',
    ]
    assert err == ""
    assert all(line.count("\t") == len(COLUMNS) - 1 for line in out.splitlines())


def test_tsv_fields_write_every_control_character_out(capsys: pytest.CaptureFixture[str]) -> None:
    """An OSC 52 clipboard write, a C1 CSI and DEL in a stored name never reach the pipe's
    reader raw (it may well be a terminal, through ``| less -R`` or ``| cat``); JSON stays
    exact."""
    name = "a\x1b]52;c;eA==\x07b\x9b2J\x7f\\x1b"
    print_rows(["name"], [{"name": name}], as_json=False)
    assert capsys.readouterr().out == "a\\x1b]52;c;eA==\\x07b\\x9b2J\\x7f\\\\x1b\n"
    print_rows(["name"], [{"name": name}], as_json=True)
    assert json.loads(capsys.readouterr().out) == {"name": name}


def test_tsv_has_no_colour_or_table(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    print_rows(COLUMNS, ROWS, as_json=False)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "│" not in out


def test_object_as_json_and_as_key_value_lines(capsys: pytest.CaptureFixture[str]) -> None:
    obj = {"name": "s1", "queue": "q1", "wait": False, "plugs": [{"name": "p1", "type": "RESULT"}]}
    print_object(obj, as_json=True)
    assert json.loads(capsys.readouterr().out) == obj
    print_object(obj, as_json=False)
    assert capsys.readouterr().out.splitlines() == [
        "name\ts1",
        "queue\tq1",
        "wait\tfalse",
        'plugs\t{"name":"p1","type":"RESULT"}',
    ]


def test_table_on_a_terminal(tty: None, capsys: pytest.CaptureFixture[str]) -> None:
    print_rows(COLUMNS, [*ROWS, {"name": "[red]markup[/]"}], as_json=False)
    out = capsys.readouterr().out
    assert "│" in out and "\t" not in out
    header = next(line for line in out.splitlines() if "name" in line)
    assert all(column in header for column in COLUMNS)
    assert "[red]markup[/]" in out  # stored text shows as written, never as rich markup
    assert "true" in out and "false" in out
    print_rows(["name"], [{"name": "x\x1b[2J\x9b1m\ny"}], as_json=False)
    out = capsys.readouterr().out
    assert "x\\x1b[2J\\x9b1m\\ny" in out and "\x1b[2J" not in out and "\x9b" not in out


def test_object_tables_on_a_terminal(tty: None, capsys: pytest.CaptureFixture[str]) -> None:
    obj = {"name": "s1", "queue": "q1", "plugs": [{"name": "p1", "type": "RESULT"}], "tags": []}
    print_object(obj, as_json=False)
    out = capsys.readouterr().out
    assert "field" in out and "value" in out and "s1" in out
    assert "plugs" in out and "p1" in out and "RESULT" in out


def test_no_color_turns_escapes_off(
    tty: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    print_rows(COLUMNS, ROWS, as_json=False)
    assert "\x1b[" in capsys.readouterr().out  # bold headers on a colour terminal
    monkeypatch.setenv("NO_COLOR", "1")
    print_rows(COLUMNS, ROWS, as_json=False)
    assert "\x1b" not in capsys.readouterr().out


def test_piped_output_never_imports_rich() -> None:
    code = (
        "import sys\n"
        "from shellflow.commands.output import print_rows, print_object\n"
        "print_rows(['a'], [{'a': 1}], as_json=False)\n"
        "print_rows(['a'], [{'a': 1}], as_json=True)\n"
        "print_object({'a': 1}, as_json=False)\n"
        "assert 'rich' not in sys.modules, 'rich imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["1", '{"a":1}', "a\t1"]
