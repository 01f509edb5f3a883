"""What ``flow`` prints of hostile stored text: escaped for a person, exact as data.

The values go straight into the database (SQL, past every name rule), as rows stored before
any rule existed would be. Each holds markup, an OSC 52 clipboard write, a clear-screen
sequence, a C1 CSI, DEL, a tab and a newline. On a terminal (a real pseudo-terminal) tables,
``ls call``, ``listen`` and error lines show them written out (shellflow.printable); piped,
tab-separated fields stay one field with every control escaped; ``--json`` and NDJSON give
the exact values back.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shellflow.printable import printable
from tests.conftest import REDIS_URL, Result, _flow_executable, require_service

REPO = "https://github.com/radiantone/pyfi-processors"
SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's own styling: the only escapes a table may send


def hostile(tag: str) -> str:
    return f"[/]{tag}[bold]\x1b]52;c;cHduZWQ=\x07\x1b[2J\x9b1m\x7f\ttab\nnl"


CALL = ("\x1b]0;pwned\x07[/]" + "0" * 36)[:36]
WELL_FORMED = "0b0b0b0b-0000-4000-8000-000000000015"  # `task result` takes only a UUID


def raw_controls(text: str, allowed: str = "\n") -> set[str]:
    return {hex(ord(c)) for c in text if unicodedata.category(c) == "Cc" and c not in allowed}


def in_pty(*args: str, env: dict[str, str] | None = None) -> Result:
    """``flow ARGS`` with stdout on a pseudo-terminal (a table, colours, readable lines)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*_flow_executable(), *args], stdin=subprocess.DEVNULL, stdout=slave,
        stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "1000", **(env or {})},
    )  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        assert ready, f"flow {' '.join(args)} printed nothing for a minute"
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal: all read
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = proc.wait(timeout=60)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    out = b"".join(chunks).decode().replace("\r\n", "\n")  # the terminal's own line ends
    return Result(code, out, stderr)


@pytest.fixture
def hostile_db(cli: Any, initialised_db: str) -> str:
    """A socket, processor and queue renamed, and a failed call with an event and a printed
    line, every stored text hostile; on SQLite and PostgreSQL."""
    from sqlalchemy import insert, text

    from shellflow.model.calls import Call, Event, Log
    from shellflow.model.db import session_scope

    url = initialised_db
    cli.ok("add", "queue", "-n", "q1")
    cli.ok("add", "processor", "-n", "p1", "-g", REPO, "-m", "pyfi.processors.sample")
    cli.ok("add", "socket", "-n", "s1", "-q", "q1", "-pn", "p1", "-t", "do_something")
    now = datetime.now(UTC).replace(tzinfo=None)
    with session_scope(url) as session:
        for table in ("queue", "processor", "socket"):
            session.execute(text(f"UPDATE {table} SET name = :v"), {"v": hostile(table)})
        socket_id = session.execute(text("SELECT id FROM socket")).scalar_one()
        session.execute(
            insert(Call.__table__).values(
                id=CALL, name=hostile("socket"), socket_id=socket_id, state="failed",
                started=now, finished=now + timedelta(seconds=1), lastupdated=now,
                tracking=CALL, hostname=hostile("host"), worker=hostile("worker"),
                error=hostile("error"), traceback="Traceback:\n" + hostile("traceback"),
                args=json.dumps({"args": [hostile("arg")], "kwargs": {}}),
                result=json.dumps(hostile("result"), ensure_ascii=False),
            )
        )  # fmt: skip
        session.execute(
            insert(Call.__table__).values(
                id=WELL_FORMED,
                name=hostile("socket"),
                socket_id=socket_id,
                state="failed",
                started=now,
                finished=now,
                lastupdated=now,
                tracking=WELL_FORMED,
                error=hostile("error"),
            )
        )
        session.execute(
            insert(Event.__table__).values(
                id="e" * 36, name="received", note=hostile("note"), call_id=CALL, created=now
            )
        )
        session.execute(
            insert(Log.__table__).values(
                id="l" * 36, oid=CALL, discriminator="call", text=hostile("printed"),
                source="stdout", created=now,
            )
        )  # fmt: skip
    return url


def test_tables_on_a_terminal_show_stored_text_escaped(hostile_db: str) -> None:
    for args, tags in (
        (("ls", "sockets"), ("socket", "processor", "queue")),
        (("ls", "calls"), ("socket", "worker")),
        (("ls", "call", "--id", CALL, "-r"), ("socket", "host", "note")),
        (("ls", "call", "--id", CALL, "--flow"), ("socket",)),
    ):
        done = in_pty(*args)
        assert done.code == 0, done.stderr
        shown = SGR.sub("", done.stdout)
        assert not raw_controls(shown), (args, raw_controls(shown))
        for tag in tags:
            assert printable(hostile(tag)) in shown, (args, tag)
    detail = SGR.sub("", in_pty("ls", "call", "--id", CALL, "-r").stdout)
    assert printable(CALL) in detail
    # A multi-line field keeps its newline (and its tab, which the table turns to spaces).
    lines = detail.splitlines()
    at = next(n for n, line in enumerate(lines) if printable(hostile("error"))[:40] in line)
    assert printable(hostile("error")).split("\\t")[0] in lines[at] and "nl" in lines[at + 1]
    assert "\\x1b]52;c;cHduZWQ=\\x07" in detail and "\\x9b1m\\x7f" in detail


def test_piped_rows_are_one_record_a_line_and_json_is_exact(hostile_db: str, flow: Any) -> None:
    rows = flow.ok("ls", "sockets").stdout.splitlines()
    assert len(rows) == 1 and not raw_controls(rows[0], allowed="\t")
    assert printable(hostile("socket")) in rows[0].split("\t")
    shown = flow.ok("ls", "call", "--id", CALL).stdout
    fields = dict(line.split("\t") for line in shown.splitlines())  # one key, one value a line
    assert fields["id"] == printable(CALL) and fields["error"] == printable(hostile("error"))
    for line in fields.values():
        assert not raw_controls(line, allowed="")

    listed = [json.loads(line) for line in flow.ok("ls", "sockets", "--json").stdout.splitlines()]
    assert [row["name"] for row in listed] == [hostile("socket")]
    call = json.loads(flow.ok("ls", "call", "--id", CALL, "-r", "--json").stdout)
    assert call["name"] == hostile("socket") and call["error"] == hostile("error")
    assert call["result"] == hostile("result") and call["id"] == CALL
    assert call["events"][0]["note"] == hostile("note")


def test_call_tree_lines_are_escaped(hostile_db: str, flow: Any) -> None:
    lines = flow.ok("ls", "call", "--id", CALL, "--tree").stdout.splitlines()
    assert lines == [f"{printable(hostile('socket'))}  {printable(CALL)}  failed"]


def test_error_lines_write_stored_text_out(hostile_db: str, flow: Any) -> None:
    refused = flow("task", "result", CALL)  # not a UUID: refused, the id written out
    assert refused.code == 2
    assert refused.stderr.count("\n") == 1 and not raw_controls(refused.stderr)
    failed = flow("task", "result", WELL_FORMED)  # the call's stored error, as its failure
    assert failed.code == 1
    assert failed.stderr.count("\n") == 1 and not raw_controls(failed.stderr)
    assert printable(" ".join(hostile("error").split())) in failed.stderr
    missing = flow("ls", "call", "--id", CALL[:-3] + "zzz")  # close names: stored ids
    assert missing.code == 3
    assert missing.stderr.count("\n") == 1 and not raw_controls(missing.stderr)
    assert printable(CALL) in missing.stderr


def test_listen_on_a_terminal_escapes_and_piped_is_exact(hostile_db: str) -> None:
    require_service("redis")
    from shellflow.engine.records.events import replay_since

    since = datetime.now(UTC) - timedelta(hours=1)
    replayed = replay_since(hostile_db, since, None)
    assert any(event.get("data") == hostile("printed") for event in replayed)
    args = ("--pubsub", REDIS_URL, "listen", "-n", "global", "--since", since.isoformat(),
            "--count", str(len(replayed)))  # fmt: skip
    shown = in_pty(*args)
    assert shown.code == 0, shown.stderr
    assert len(shown.stdout.splitlines()) == len(replayed)
    assert not raw_controls(shown.stdout)
    for tag in ("printed", "error", "socket", "processor"):
        assert printable(hostile(tag)) in shown.stdout, tag

    from tests.conftest import FlowRunner

    piped = FlowRunner()(*args)
    assert piped.code == 0, piped.stderr
    events = [json.loads(line) for line in piped.stdout.splitlines()]
    assert events == replayed  # NDJSON: the exact values


NOT_EVENTS = [b"garbage", b"caf\xe9", b"[1, 2]", b'"text"', b"[" * 100_000 + b"]" * 100_000]


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_listen_skips_messages_that_are_not_events(
    cli: Any, initialised_db: str, terminal: bool
) -> None:
    """Whoever may publish on the pub/sub server may send any bytes on a processor's
    channel: ``flow listen`` skips what is not an event and prints the events after it."""
    require_service("redis")
    import uuid

    import redis

    name = f"listen-{uuid.uuid4().hex[:12]}"  # a channel of this test's own
    cli.ok("add", "processor", "-n", name, "-g", REPO, "-m", "pyfi.processors.sample")
    events = [{"channel": "task", "state": "received", "data": "\x1b[2J one"},
              {"channel": "log", "state": "log", "data": {"n": 2}}]  # fmt: skip
    if terminal:
        master, out = pty.openpty()
    else:
        master, out = os.pipe()
    proc = subprocess.Popen(
        [*_flow_executable(), "--pubsub", REDIS_URL, "listen", "-n", name, "--count", "2"],
        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "1000"},
    )  # fmt: skip
    os.close(out)
    try:
        assert proc.stderr is not None
        said = proc.stderr.readline().decode()  # printed once the subscription is confirmed
        assert said.startswith("Listening to"), said
        client = redis.Redis.from_url(REDIS_URL)
        for payload in [*NOT_EVENTS, *(json.dumps(e).encode() for e in events)]:
            client.publish(f"{name}.{events[0]['channel']}", payload)
        client.close()
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed with the child
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=60)
        rest = proc.stderr.read().decode()
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert (code, rest) == (0, "")
    lines = b"".join(chunks).decode().replace("\r\n", "\n").splitlines()
    if terminal:
        assert [line.split(" ", 3)[-1] for line in lines] == ["received None \\x1b[2J one",
                                                             'log None {"n": 2}']  # fmt: skip
    else:
        assert [json.loads(line) for line in lines] == events
