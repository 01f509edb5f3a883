"""Dead letters on both deployments: a call that kills its worker each time ends ``dead``,
is listed and told as such, and ``flow task retry`` sends it (or many calls) again, linked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine.chaos import Client
from tests.engine.conftest import Deployment

LINKED = "SELECT id, state, result FROM call WHERE taskparent = ?"


def _publish_dead_letter(client: Client, socket: str, body: dict[str, str]) -> None:
    from shellflow.engine.calls.sender import app_for
    from shellflow.engine.transport.dead_letters import dead_letter

    dead_letter(app_for(client.settings), socket, body)


def _dead_letter_ids(client: Client, socket: str) -> list[str]:
    """The call ids of the dead letters in ``<socket>.dead``, taken out of it to read them."""
    from kombu import Connection

    from shellflow.engine.transport.dead_letters import dead_letter_queue
    from shellflow.urls import transport_url

    ids = []
    with Connection(transport_url(client.settings.broker)) as conn:
        queue = dead_letter_queue(socket)(conn.channel())
        while (message := queue.get(no_ack=True)) is not None:
            ids.append(str(message.payload["id"]))
    return ids


def test_a_dead_call_is_listed_told_and_retried_as_a_linked_call(
    deployment: Deployment, chaos: dict[str, str], client: Client
) -> None:
    from shellflow.engine.worker.delivery import MAX_REDELIVERIES
    from shellflow.errors import CallFailed, ExitCode

    d = deployment
    d.start_worker(chaos["processor"], concurrency=1)
    runs = 1 + MAX_REDELIVERIES  # every one of these kills its worker process
    counter = Path(d.env["SHELLFLOW_HOME"]) / "crash.count"
    sent = client.send(chaos["crash"], str(counter), until=runs)
    with pytest.raises(CallFailed, match="DeadLettered"):
        client.wait(sent, timeout=180)
    dead = sent.call_id
    d.wait_for("SELECT state FROM call WHERE id = ?", (dead,), [("dead",)])
    error = d.query("SELECT error FROM call WHERE id = ?", (dead,))[0][0]
    assert "without finishing" in error and ".dead" in error

    listed = d.ok("ls", "calls", "--state", "dead", "--socket", chaos["crash"], "--json")
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [dead]
    told = d.run("task", "result", dead)
    assert told.code == ExitCode.CALL_FAILED and "is dead" in told.stderr
    assert "without finishing" in told.stderr and told.stdout == ""
    events = json.loads(d.ok("ls", "call", "--id", dead, "--json").stdout)["events"]
    assert [e["name"] for e in events].count("deadletter") == 1 and events[-1]["name"] == "dead"
    heard = d.ok("listen", "-n", chaos["processor"], "-c", "error", "--since", "1h",
                 "--count", "1")  # fmt: skip
    (error_event,) = [json.loads(line) for line in heard.stdout.splitlines()]
    assert (error_event["call"], error_event["state"]) == (dead, "dead")
    assert "without finishing" in error_event["data"]

    stranger = {"id": "stranger-call", "socket": chaos["crash"], "reason": "a test's"}
    _publish_dead_letter(client, chaos["crash"], stranger)
    retried = d.run("task", "retry", dead, "--timeout", "120")
    assert retried.code == 0, retried.stderr
    assert retried.stdout.strip() == str(runs + 1)  # the attempt after the dead ones
    ((new, state, result),) = d.wait_rows(LINKED, (dead,), 1)
    assert (state, result) == ("finished", str(runs + 1)) and new != dead
    assert f"retried as call {new}" in retried.stderr
    shown = json.loads(d.ok("ls", "call", "--id", new, "--json").stdout)
    assert shown["retry_of"] == dead and shown["state"] == "finished"
    old = json.loads(d.ok("ls", "call", "--id", dead, "--json").stdout)
    assert old["state"] == "dead"  # the old call keeps its own record
    assert [e["note"] for e in old["events"] if e["name"] == "retried"] == [
        f"Retried as call {new}"
    ]
    # Its copy left <socket>.dead with the retry; another call's dead letter stayed there.
    assert _dead_letter_ids(client, chaos["crash"]) == ["stranger-call"]
    # A dead call already retried is not sent again by state; a finished one is refused.
    again = d.ok("task", "retry", "--state", "dead", "--socket", chaos["crash"])
    assert again.stdout == "" and "retried 0 dead call(s)" in again.stderr
    refused = d.run("task", "retry", new)
    assert refused.code == ExitCode.CONFLICT and "finished" in refused.stderr
    unknown = d.run("task", "retry", "00000000-0000-4000-8000-000000000000")
    assert unknown.code == ExitCode.NOT_FOUND


def test_retry_by_state_sends_each_such_call_of_the_socket_again(
    deployment: Deployment, chaos: dict[str, str], client: Client
) -> None:
    """``--state failed --socket S``: two failed calls retried, each once, as new calls."""
    from shellflow.errors import CallFailed

    d = deployment
    d.start_worker(chaos["processor"], concurrency=1)
    home = Path(d.env["SHELLFLOW_HOME"])
    # Retries 2: attempts 1-3 fail; a retry's attempts 4 and 5 fail too, 6 returns 6.
    failed = [client.send(chaos["flaky"], str(home / f"flaky{i}.count"), failures=5)
              for i in range(2)]  # fmt: skip
    for sent in failed:
        with pytest.raises(CallFailed):
            client.wait(sent)
    old = {sent.call_id for sent in failed}
    for call_id in old:
        d.wait_for("SELECT state FROM call WHERE id = ?", (call_id,), [("failed",)])
    done = d.ok("task", "retry", "--state", "failed", "--socket", chaos["flaky"])
    new = done.stdout.split()
    assert len(new) == 2 and not old & set(new)
    assert f"retried 2 failed call(s) of {chaos['flaky']}" in done.stderr
    for call_id in old:
        ((linked, _, result),) = d.wait_rows(LINKED + " AND state = 'finished'", (call_id,), 1)
        assert linked in new and result == "6"
    # Each was retried once: the same command again finds none left.
    assert d.ok("task", "retry", "--state", "failed", "--socket", chaos["flaky"]).stdout == ""
