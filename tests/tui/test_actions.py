"""Actions with a confirmation, their ``flow`` command in the command log, and --read-only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import REDIS_URL, require_service
from tests.tui.conftest import settle

REDIS = REDIS_URL
QUEUE = "pyfi.processors.sample.do_something"  # each socket has its own broker queue


def processor(url: str) -> tuple[str, str]:
    from shellflow.model.listing import get_object, reader

    with reader(url) as conn:
        row = get_object(conn, "processor", "proc1")
    return row["status"], row["requested_status"]


async def wait_for_log(pilot: Any, count: int) -> None:
    for _ in range(200):
        await settle(pilot)
        if len(pilot.app.command_log) >= count:
            return
        await pilot.pause(0.05)
    raise AssertionError(f"no command logged: {pilot.app.command_log}")


async def open_network(pilot: Any) -> None:
    await settle(pilot)
    await pilot.press("n")
    await settle(pilot)


@pytest.mark.asyncio
async def test_pause_and_resume_a_processor(filled_db, make_dashboard) -> None:
    url, _ = filled_db
    app = make_dashboard(url)
    async with app.run_test() as pilot:
        await open_network(pilot)
        await pilot.press("P")
        await pilot.pause()
        dialog = app.screen
        assert type(dialog).__name__ == "ConfirmDialog"
        assert dialog.command == "flow proc pause -n proc1"
        await pilot.press("n")  # declined: nothing happens
        await settle(pilot)
        assert processor(url)[1] != "paused" and app.command_log == []
        await pilot.press("P", "y")
        await wait_for_log(pilot, 1)
        assert processor(url)[1] == "paused"
        assert app.command_log[0].command == "flow proc pause -n proc1"
        assert not app.command_log[0].failed
        await pilot.press("U", "enter")
        await wait_for_log(pilot, 2)
        assert processor(url)[1] == "running"
        assert app.command_log[1].command == "flow proc resume -n proc1"
        await pilot.press("L")  # the command log screen lists both
        await settle(pilot)
        assert type(app.screen).__name__ == "CommandLogScreen"
        lines = "\n".join(str(line.text) for line in app.screen.query_one("#command-log").lines)
        assert "$ flow proc pause -n proc1" in lines and "$ flow proc resume -n proc1" in lines


@pytest.mark.asyncio
async def test_restart_a_stopped_processor(filled_db, make_dashboard) -> None:
    from sqlalchemy import text

    from shellflow.model.db import session_scope

    url, _ = filled_db
    with session_scope(url) as session:
        session.execute(text("UPDATE processor SET status = 'stopped'"))
    app = make_dashboard(url)
    async with app.run_test() as pilot:
        await open_network(pilot)
        await pilot.press("R", "y")
        await wait_for_log(pilot, 1)
        entry = app.command_log[0]
        assert entry.command == "flow proc restart -n proc1" and not entry.failed, entry
        assert processor(url)[1] == "running"


@pytest.mark.asyncio
async def test_read_only_hides_and_refuses_actions(filled_db, make_dashboard) -> None:
    url, ids = filled_db
    app = make_dashboard(url, read_only=True)
    async with app.run_test() as pilot:
        await open_network(pilot)
        await pilot.press("P")
        await settle(pilot)
        assert type(app.screen).__name__ == "NetworkScreen"
        shown = {b.binding.action for b in app.screen.active_bindings.values() if b.enabled}
        assert "processor('pause')" not in shown
        assert "[read-only]" in str(app.screen.query_one("#status-bar").render())
        await pilot.press("c")
        app.open_call(ids["root"])
        await settle(pilot)
        await pilot.press("r", "x")
        await settle(pilot)
        assert type(app.screen).__name__ == "CallDetailScreen" and app.command_log == []


@pytest.mark.asyncio
async def test_rerun_sends_the_same_arguments(filled_db, make_dashboard) -> None:
    require_service("redis")
    import redis

    url, ids = filled_db
    client = redis.Redis.from_url(REDIS)
    client.delete(QUEUE)
    app = make_dashboard(url, redis=REDIS)
    try:
        async with app.run_test() as pilot:
            await settle(pilot)
            app.open_call(ids["b"])  # a failed do_something call with args [3]
            await settle(pilot)
            await pilot.press("r")
            await pilot.pause()
            command = app.screen.command
            assert command == "flow task run -s pyfi.processors.sample.do_something --data 3"
            await pilot.press("y")
            await wait_for_log(pilot, 1)
            entry = app.command_log[0]
            assert not entry.failed, entry.outcome
            messages = [json.loads(m) for m in client.lrange(QUEUE, 0, -1)]
            assert len(messages) == 1
            sent = messages[0]["headers"]
            assert sent["task"] == "pyfi.processors.sample.do_something"
            assert sent["argsrepr"] == "[3]" and sent["kwargsrepr"] == "{}"
            assert sent["id"] in entry.outcome
    finally:
        client.delete(QUEUE)
        client.close()


@pytest.mark.asyncio
async def test_r_on_a_dead_call_retries_it_as_a_linked_call(filled_db, make_dashboard) -> None:
    require_service("redis")
    import redis

    from shellflow.model.listing import reader, writer

    url, ids = filled_db
    dead = ids["b"]
    with writer(url) as conn:  # as a worker leaves a call redelivered past the cap
        conn.execute("UPDATE call SET state = 'dead' WHERE id = ?", [dead])
    client = redis.Redis.from_url(REDIS)
    client.delete(QUEUE)
    app = make_dashboard(url, redis=REDIS)
    try:
        async with app.run_test() as pilot:
            await settle(pilot)
            app.open_call(dead)
            await settle(pilot)
            await pilot.press("r")
            await pilot.pause()
            assert app.screen.command == f"flow task retry {dead} --async"
            await pilot.press("y")
            await wait_for_log(pilot, 1)
            entry = app.command_log[0]
            assert not entry.failed, entry.outcome
            messages = [json.loads(m) for m in client.lrange(QUEUE, 0, -1)]
            assert len(messages) == 1 and messages[0]["headers"]["argsrepr"] == "[3]"
            new = messages[0]["headers"]["id"]
            assert f"as call {new}" in entry.outcome
            with reader(url) as conn:
                linked = conn.query("SELECT state, taskparent FROM call WHERE id = ?", [new])
            assert linked == [("pending", dead)]
    finally:
        client.delete(QUEUE)
        client.close()


@pytest.mark.asyncio
async def test_cancel_of_a_running_call_stops_it(filled_db, make_dashboard):
    require_service("redis")
    url, ids = filled_db
    app = make_dashboard(url, redis=REDIS)
    async with app.run_test() as pilot:
        await settle(pilot)
        app.open_call(ids["x7"])  # a running call: cancelling it means stopping it
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        assert app.screen.command == f"flow task cancel {ids['x7']} --terminate"
        await pilot.press("y")
        await wait_for_log(pilot, 1)
        entry = app.command_log[0]
        assert entry.command == f"flow task cancel {ids['x7']} --terminate"
        assert not entry.failed and "stopping call" in entry.outcome, entry.outcome
        app.open_call(ids["root"])  # finished: the cancel key is disabled
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        assert type(app.screen).__name__ == "CallDetailScreen"


def test_cancel_without_terminate_leaves_a_running_call(filled_db) -> None:
    """The plain cancel (``flow task cancel`` without --terminate) refuses a started call."""
    require_service("redis")
    from shellflow.config import load_settings
    from shellflow.errors import Conflict
    from shellflow.tui.data.actions import cancel

    url, ids = filled_db
    settings = load_settings({"db": url, "broker": REDIS, "backend": REDIS, "pubsub": REDIS})
    action = cancel(settings, ids["x7"])
    assert action.command == f"flow task cancel {ids['x7']}"
    with pytest.raises(Conflict, match="--terminate"):
        action.run()
    with pytest.raises(Conflict, match="already finished"):
        cancel(settings, ids["root"], terminate=True).run()


def test_cancel_of_a_queued_call_records_it_revoked(filled_db) -> None:
    """A call sent but not started (no record yet) is cancelled through the engine."""
    require_service("redis")
    import uuid

    from shellflow.config import load_settings
    from shellflow.model.history import get_call
    from shellflow.model.listing import reader
    from shellflow.tui.data.actions import cancel

    url, _ = filled_db
    settings = load_settings({"db": url, "broker": REDIS, "backend": REDIS, "pubsub": REDIS})
    queued = str(uuid.uuid4())
    assert cancel(settings, queued).run() == f"cancelled call {queued}"
    with reader(url) as conn:
        assert get_call(conn, queued)["state"] == "revoked"
    assert cancel(settings, queued).run() == f"call {queued} was already cancelled"


def test_cancel_shows_a_hostile_call_id_quoted_for_the_shell() -> None:
    """The command a dialog shows can be pasted into a shell: a stored id runs nothing."""
    import shlex

    from shellflow.config import load_settings
    from shellflow.tui.data.actions import cancel

    hostile = "x; touch pwned $(id)"
    action = cancel(load_settings({}), hostile, terminate=True)
    assert shlex.split(action.command) == ["flow", "task", "cancel", hostile, "--terminate"]
