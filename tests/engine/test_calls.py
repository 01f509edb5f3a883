"""Sockets served by a worker and called from the shell, on both deployments."""

from __future__ import annotations

import json

from tests.engine.conftest import Deployment
from tests.engine.records import events_of

CALLS = "SELECT state, result, error, traceback FROM call WHERE name = ? ORDER BY started"


def test_spec_quickstart_call_and_pipes(deployment: Deployment, network: dict[str, str]) -> None:
    d = deployment
    d.start_worker(network["processor"])
    # Not JSON: passed as a string, never evaluated (the original ran this through eval).
    out = d.ok(
        "task", "run", "--socket", network["do_this"], "--data", "['some data']", "--timeout", "60"
    )
    assert out.stdout == "Do this: ['some data']\n"
    piped = d.ok("task", "run", "-s", network["do_something"], input="HI THERE!\n")
    assert piped.stdout == "TEXT:HI THERE!\n"
    chained = d.ok("task", "run", "-s", network["do_this"], input=piped.stdout)
    assert chained.stdout == "Do this: TEXT:HI THERE!\n"
    # Keyword arguments; a non-string result comes back as compact JSON.
    summed = d.ok("task", "run", "-s", network["add_two"], "one:=[1]", "two:=[2, 3]")
    assert json.loads(summed.stdout) == [1, 2, 3]


def test_records_of_a_finished_call(deployment: Deployment, network: dict[str, str]) -> None:
    d = deployment
    d.start_worker(network["processor"])
    call_id = d.ok(
        "task", "run", "-s", network["do_something"], "--data", '"x"', "--async"
    ).stdout.strip()
    rows = d.wait_for(
        "SELECT state, result FROM call WHERE id = ?", (call_id,), [("finished", '"TEXT:x"')]
    )
    assert rows == [("finished", '"TEXT:x"')]
    assert events_of(d, call_id) == ["received", "prerun", "postrun"]
    # What the function printed is in the call's log, not in its result.
    logs = d.query("SELECT text FROM log WHERE oid = ?", (call_id,))
    assert logs == [("Do something: x",)]


def test_a_long_argument_is_called(deployment: Deployment, network: dict[str, str]) -> None:
    """A 300 KB argument: its header shows a cut ``argsrepr``, not the whole value (a header
    larger than RabbitMQ's frame size closes the connection)."""
    d = deployment
    d.start_worker(network["processor"])
    value = "x" * 300_000
    result = d.ok("task", "run", "-s", network["do_this"], "--timeout", "60", input=value)
    assert result.stdout.strip() == f"Do this: {value}"


def test_a_raising_function_fails_the_call(deployment: Deployment, network: dict[str, str]) -> None:
    d = deployment
    d.start_worker(network["processor"])
    result = d.run("task", "run", "-s", network["add_two"], "one:=1", "--timeout", "60")
    assert result.code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing 1 required positional argument" in lines[0], result.stderr
    rows = d.wait_rows(
        "SELECT state, error, traceback, id FROM call WHERE name = ?", (network["add_two"],), 1
    )
    assert len(rows) == 1
    state, error, traceback, call_id = rows[0]
    assert state == "failed"
    assert error.startswith("TypeError:")
    assert "Traceback" in traceback and "TypeError" in traceback
    assert events_of(d, call_id) == ["received", "prerun", "failure"]


def test_calls_wait_in_their_queue_until_a_worker_runs(
    deployment: Deployment, network: dict[str, str]
) -> None:
    d = deployment
    ids = [
        d.ok(
            "task", "run", "-s", network["do_something"], "--data", f'"{i}"', "--async"
        ).stdout.strip()
        for i in range(3)
    ]
    # Sent, recorded as pending (no worker has taken them), and none started.
    assert d.query("SELECT state, count(*) FROM call GROUP BY state") == [("pending", 3)]
    d.start_worker(network["processor"])
    for i, call_id in enumerate(ids):
        expect = [("finished", json.dumps(f"TEXT:{i}"))]
        assert (
            d.wait_for("SELECT state, result FROM call WHERE id = ?", (call_id,), expect) == expect
        )


def test_unknown_socket_is_not_found(deployment: Deployment, network: dict[str, str]) -> None:
    result = deployment.run("task", "run", "-s", network["do_this"] + "x", "--data", "1")
    assert result.code == 3
    assert "did you mean" in result.stderr


def test_bad_keyword_is_a_usage_error(deployment: Deployment, network: dict[str, str]) -> None:
    result = deployment.run("task", "run", "-s", network["do_this"], "one:=[1")
    assert result.code == 2
    assert "Traceback" not in result.stderr
