"""Changing the network under running work (issue 16, point 3), on SQLite and PostgreSQL.

A socket, processor, queue or plug with calls pending or running is not deleted, renamed or
re-pointed unless ``--force``; with it, those calls end ``revoked`` with the reason, their
results say so (whoever waits learns at once) and the socket's queue in the broker is
emptied. The broker and result backend are the shared Redis (this test process's own
database); the calls are written as ``flow task run --async`` and a worker write them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from objects_support import DO_SOMETHING, DO_THIS, names, wired

from shellflow.model import call_writes
from shellflow.model.listing import reader, writer
from shellflow.model.urls import dialect_of
from tests.conftest import REDIS_URL, require_service

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


@pytest.fixture
def busy(cli: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The wired quick start on the shared Redis as broker and backend; its queues emptied
    before and after (the socket's names are the quick start's own)."""
    require_service("redis")
    monkeypatch.setenv("SHELLFLOW_BROKER", REDIS_URL)
    monkeypatch.setenv("SHELLFLOW_BACKEND", REDIS_URL)
    _clear_queues()
    wired(cli)
    yield initialised_db
    _clear_queues()
    from shellflow.engine.calls.sender import forget_routes

    forget_routes()


def _redis() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL)


def _clear_queues() -> None:
    client = _redis()
    client.delete(DO_SOMETHING, DO_THIS)
    client.close()


def _socket_id(url: str, socket: str) -> str:
    with reader(url) as conn:
        return str(conn.query("SELECT id FROM socket WHERE name = ?", [socket])[0][0])


def _pending(url: str, socket: str, call_id: str, parent: str | None = None) -> None:
    with writer(url) as conn:
        assert call_writes.insert_pending(
            conn, call_id=call_id, name=socket, socket_id=_socket_id(url, socket),
            task_id=None, flow=call_id, parent=parent, args="{}", sent=NOW,
        )  # fmt: skip


def _worker_row(url: str, socket: str, call_id: str, state: str) -> None:
    """A worker's record of the call (the worker's own write: ``write_records``)."""
    from shellflow.engine.records.store import RecordStore

    row: dict[str, Any] = dict.fromkeys(call_writes.CALL_COLUMNS)
    row.update(id=call_id, created=NOW, lastupdated=NOW, name=socket, state=state,
               socket_id=_socket_id(url, socket), celeryid=call_id, tracking=call_id,
               started=NOW, hostname="here")  # fmt: skip
    if state == "finished":
        row.update(finished=NOW, result=json.dumps(1))
    store = RecordStore(url)
    try:
        line = json.dumps({"r": [call_writes.call_values(dialect_of(url), row)]}, default=str)
        store.absorb(line.encode())
        store.flush(patience=1)
    finally:
        store.close()


def _state(url: str, call_id: str) -> str:
    with reader(url) as conn:
        return str(conn.query("SELECT state FROM call WHERE id = ?", [call_id])[0][0])


def _revoked_note(url: str, call_id: str) -> list[str]:
    with reader(url) as conn:
        rows = conn.query(
            "SELECT note FROM event WHERE call_id = ? AND name = 'revoked'", [call_id]
        )
    return [str(note) for (note,) in rows]


def _backend_status(call_id: str) -> tuple[str, str]:
    """The stored result's status and message, as a waiter would read them."""
    client = _redis()
    try:
        raw = client.get(f"celery-task-meta-{call_id}")
    finally:
        client.close()
    assert raw is not None, f"no stored result for {call_id}"
    meta = json.loads(raw)
    return meta["status"], json.dumps(meta["result"])


def _two_busy(url: str) -> None:
    """do_this: one call pending, one running, one finished (which does not count)."""
    _pending(url, DO_THIS, "c-pending")
    _worker_row(url, DO_THIS, "c-running", "running")
    _worker_row(url, DO_THIS, "c-done", "finished")


def test_changes_under_running_calls_are_refused_with_their_count(cli: Any, busy: str) -> None:
    _two_busy(busy)
    refused = [
        ("delete", "socket", "-n", DO_THIS),
        ("delete", "socket", "-n", DO_THIS, "--cascade"),
        ("update", "socket", "-n", DO_THIS, "--rename", "elsewhere"),
        ("update", "socket", "-n", DO_THIS, "-t", "do_something"),
        ("update", "processor", "-n", "proc1", "--rename", "proc9"),
        ("delete", "processor", "-n", "proc1", "--cascade"),
        ("delete", "queue", "-n", "pyfi.queue1", "--cascade"),
        ("update", "queue", "-n", "pyfi.queue1", "--rename", "q9"),
        ("proc", "remove", "-n", "proc1"),
    ]
    for args in refused:
        result = cli(*args)
        assert result.code == 4, (args, result.stderr)
        line = result.stderr.strip()
        assert len(line.splitlines()) == 1, (args, line)
        assert "has 2 calls pending or running; --force revokes them" in line, (args, line)
    assert sorted(names(cli, "sockets")) == sorted([DO_SOMETHING, DO_THIS])
    assert (_state(busy, "c-pending"), _state(busy, "c-running")) == ("pending", "running")
    # What strands nothing goes on under running work: a description, an idle socket.
    cli.ok("update", "socket", "-n", DO_THIS, "--description", "still running")
    # New code for the processor: its worker is deployed again and takes the same queues.
    cli.ok("update", "processor", "-n", "proc1", "-m", "pyfi.processors.sample", "-br", "main")
    cli.ok("update", "socket", "-n", DO_SOMETHING, "--rename", "idle")


def test_messages_waiting_in_the_broker_count_too(cli: Any, busy: str) -> None:
    """A stream's calls have no record until a worker takes them: their messages count."""
    from shellflow.config import load_settings
    from shellflow.engine.calls.sender import release, send

    for value in (1, 2, 3):
        release(send(load_settings(), DO_THIS, [value], {}).handle)
    result = cli("delete", "socket", "-n", DO_THIS, "--cascade")
    assert result.code == 4, result.stderr
    assert f"socket {DO_THIS!r} has 3 calls pending or running" in result.stderr
    assert sorted(names(cli, "sockets")) == sorted([DO_SOMETHING, DO_THIS])
    assert _redis().llen(DO_THIS) == 3


def test_a_plug_counts_the_calls_it_fed(cli: Any, busy: str) -> None:
    _worker_row(busy, DO_SOMETHING, "c-source", "finished")
    _pending(busy, DO_THIS, "c-fed", parent="c-source")
    result = cli("delete", "plug", "-n", "plug1")
    assert result.code == 4 and "plug 'plug1' has 1 call pending" in result.stderr
    # Deleting the plug's source, which has no call running, still meets the plug's call.
    result = cli("delete", "socket", "-n", DO_SOMETHING, "--cascade")
    assert result.code == 4 and "plug 'plug1'" in result.stderr, result.stderr
    cli.ok("delete", "plug", "-n", "plug1", "--force")
    assert _state(busy, "c-fed") == "revoked"
    assert _revoked_note(busy, "c-fed") == ["plug plug1 deleted"]


def test_force_revokes_the_calls_and_empties_the_sockets_queue(cli: Any, busy: str) -> None:
    _two_busy(busy)
    # A call sent with --async: recorded pending and waiting in do_this's broker queue.
    sent = cli.ok("task", "run", "-s", DO_THIS, "--async", "--data", "1").stdout.strip()
    # A message with no record at all (as a stream sends it), in the same queue.
    from shellflow.config import load_settings
    from shellflow.engine.calls.sender import release, send

    unrecorded = send(load_settings(), DO_THIS, [2], {})
    release(unrecorded.handle)
    assert _redis().llen(DO_THIS) == 2
    _redis().rpush(DO_SOMETHING, b"not ours to touch")  # another socket's queue is left alone

    result = cli("delete", "socket", "-n", DO_THIS, "--force", "--cascade")
    assert result.code == 0, result.stderr
    assert f"Deleted socket {DO_THIS}" in result.stderr
    assert "Revoked 4 calls" in result.stderr and "2 messages" in result.stderr, result.stderr
    assert names(cli, "sockets") == [DO_SOMETHING]
    for call_id in ("c-pending", "c-running", sent, unrecorded.call_id):
        assert _state(busy, call_id) == "revoked", call_id
        assert _revoked_note(busy, call_id) == [f"socket {DO_THIS} deleted"], call_id
        status, message = _backend_status(call_id)
        assert status == "REVOKED" and f"socket {DO_THIS} deleted" in message
    assert _state(busy, "c-done") == "finished"  # an ended call keeps its record
    with reader(busy) as conn:  # the unrecorded call is named after its socket, in its flow
        row = conn.query("SELECT name, tracking FROM call WHERE id = ?", [unrecorded.call_id])
    assert row == [(DO_THIS, unrecorded.flow)]
    assert _redis().llen(DO_THIS) == 0
    assert _redis().llen(DO_SOMETHING) == 1
    # A waiter learns at once: the stored result says revoked, with the reason.
    waited = cli("task", "result", sent, "--wait", "--timeout", "30")
    assert waited.code == 1 and "cancelled" in waited.stderr, waited.stderr


def test_force_on_update_and_proc_remove(cli: Any, busy: str) -> None:
    _two_busy(busy)
    cli.ok("update", "socket", "-n", DO_THIS, "--rename", "moved", "--force")
    assert _revoked_note(busy, "c-pending") == [f"socket {DO_THIS} renamed"]
    assert _state(busy, "c-running") == "revoked"
    _pending(busy, "moved", "c-later")
    result = cli("proc", "remove", "-n", "proc1")
    assert result.code == 4 and "processor 'proc1' has 1 call" in result.stderr
    done = cli.ok("proc", "remove", "-n", "proc1", "--force")
    assert "Revoked 1 call" in done.stderr, done.stderr
    assert _revoked_note(busy, "c-later") == ["processor proc1 removed"]


def _drop_socket(path: Any, socket: str) -> None:
    """Remove the socket, and every plug, from an exported compose file."""
    import yaml

    spec = yaml.safe_load(path.read_text())
    spec["sockets"] = {k: v for k, v in spec["sockets"].items() if k != socket}
    spec.pop("plugs", None)
    path.write_text(yaml.safe_dump(spec))


def test_compose_down_and_prune_refuse_then_force(cli: Any, busy: str, tmp_path: Any) -> None:
    _pending(busy, DO_THIS, "c-pending")
    exported = cli.ok("compose", "export").stdout
    path = tmp_path / "net.yaml"
    path.write_text(exported)
    result = cli("compose", "down", str(path))
    assert result.code == 4 and "1 call pending or running" in result.stderr, result.stderr
    assert _state(busy, "c-pending") == "pending"
    # up --prune of a file without do_this (nor the plug into it) would remove it.
    pruned = tmp_path / "pruned.yaml"
    pruned.write_text(exported)
    cli.ok("delete", "plug", "-n", "plug1")
    _drop_socket(pruned, DO_THIS)
    result = cli("compose", "up", str(pruned), "--prune")
    assert result.code == 4 and "1 call pending or running" in result.stderr, result.stderr
    assert DO_THIS in names(cli, "sockets")
    cli.ok("compose", "down", str(path), "--force")
    assert _state(busy, "c-pending") == "revoked"
    assert names(cli, "sockets") == []
