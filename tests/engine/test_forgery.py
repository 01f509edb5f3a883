"""Records and results cannot be forged (issue 17, point 5), on both deployments.

A client that can publish on the broker sends a message reusing an existing call's id (with
other arguments, or for another socket): the worker's record of it is refused and logged,
never merged. A client that can publish on the result backend pushes a forged result (and
overwrites the stored one) while a caller waits: the caller ignores it, says so in one line
on stderr, and prints the call's own result.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from typing import Any

from tests.engine.chaos import Client
from tests.engine.conftest import Deployment
from tests.waiting import poll

ROW = "SELECT state, name, args, result, error FROM call WHERE id = ?"
REFUSED = "record of {name} from this worker refused, not merged"


def _forge_message(client: Client, socket: str, call_id: str, *args: Any) -> None:
    """Publish a call message under an id chosen by the sender (what anyone with a broker
    account can send): the same bytes a caller would, only the id is another call's."""
    from shellflow.engine.calls.sender import route_for, transport_for
    from shellflow.engine.transport.message import OutgoingCall
    from shellflow.engine.transport.publisher import publish

    call = OutgoingCall.make(route_for(client.settings, socket), list(args), {}, call_id=call_id)
    publish(transport_for(client.settings), call, shown_url=client.settings.broker)


def _refusals(d: Deployment, name: str) -> int:
    return d.worker_log().count(REFUSED.format(name=name))


def test_a_message_reusing_an_ended_calls_id_changes_nothing(
    deployment: Deployment, chaos: dict[str, str], client: Client, tmp_path: Any
) -> None:
    d = deployment
    d.start_worker(chaos["processor"])
    done = client.send(chaos["echo"], "real")
    assert client.wait(done) == "real"
    # flaky fails 3 times (the first try and 2 retries): the call ends failed.
    failed = client.send(chaos["flaky"], str(tmp_path / "count"), 5)
    d.wait_for("SELECT state FROM call WHERE id = ?", (failed.call_id,), [("failed",)], 60)
    d.wait_for("SELECT state FROM call WHERE id = ?", (done.call_id,), [("finished",)])
    before = {c: d.query(ROW, (c,)) for c in (done.call_id, failed.call_id)}

    _forge_message(client, chaos["echo"], done.call_id, "forged")  # other arguments
    _forge_message(client, chaos["slow"], done.call_id, "forged", 0)  # another socket
    # The case: a failed call's id, with arguments that make the function succeed.
    _forge_message(client, chaos["flaky"], failed.call_id, str(tmp_path / "other"), 0)

    # Both forged calls of ``done`` may end in one batch of the worker's writer, which
    # keeps one row per call: one refusal at least is logged for it.
    poll(lambda: f"call {done.call_id}: record of" in d.worker_log()
         and _refusals(d, chaos["flaky"]) >= 1, 60,
         lambda: f"the refusals in the worker's log:\n{d.worker_log()[-4000:]}")  # fmt: skip
    assert {c: d.query(ROW, (c,)) for c in before} == before
    assert "the call has ended (failed)" in d.worker_log()
    # Nothing the forged calls printed or did was attached to the real ones.
    assert d.query("SELECT count(*) FROM event WHERE call_id = ? AND name = 'retry'",
                   (failed.call_id,)) == [(2,)]  # fmt: skip


def test_a_message_reusing_a_queued_calls_id_with_other_arguments_is_refused(
    deployment: Deployment, chaos: dict[str, str], client: Client
) -> None:
    """The caller's ``pending`` row decides: a forged message that took the queued call's
    id and runs before it is refused; the call's own message then completes the row."""
    import time
    import uuid

    from shellflow.client.oneshot import publish, record_pending
    from shellflow.engine.calls.sender import route_for
    from shellflow.model.listing import writer

    d = deployment
    call_id = str(uuid.uuid4())
    route = route_for(client.settings, chaos["echo"])
    _forge_message(client, chaos["echo"], call_id, "forged")  # ahead in the queue
    # The caller, as 'flow task run --async' does: publish, then record the call pending.
    publish(client.settings, route, call_id, ["real"], {}, call_id, None)
    with writer(client.settings.db) as conn:
        assert record_pending(conn, route, call_id, ["real"], {}, call_id, None, time.time())
    d.start_worker(chaos["processor"])
    poll(lambda: _refusals(d, chaos["echo"]) >= 1, 60,
         lambda: f"a refusal in the worker's log:\n{d.worker_log()[-4000:]}")  # fmt: skip
    assert "sent with other arguments" in d.worker_log()
    rows = d.wait_for("SELECT state, result, args FROM call WHERE id = ?", (call_id,),
                      [("finished", '"real"', '{"args":["real"],"kwargs":{}}')])  # fmt: skip
    assert rows == [("finished", '"real"', '{"args":["real"],"kwargs":{}}')]


# -- results ----------------------------------------------------------------------------------


def _forge_results(client: Client, call_id: str, name: str) -> None:
    """Publish forged results on the call's result channel and store one under its key:
    one unsigned, one with a made-up signature (what a Redis account can do)."""
    from shellflow.engine.calls.sender import app_for

    redis = app_for(client.settings).backend.client
    key = f"celery-task-meta-{call_id}"
    for sig in (None, "v1:" + "0" * 64):
        meta = {"status": "SUCCESS", "result": "FORGED", "traceback": None, "children": [],
                "date_done": "2026-01-01T00:00:00", "task_id": call_id, "name": name,
                "args": ["FORGED"], "kwargs": {}}  # fmt: skip
        if sig:
            meta["shellflow_sig"] = sig
        redis.set(key, json.dumps(meta))
        redis.publish(key, json.dumps(meta))


def _running_call(d: Deployment, socket: str) -> str:
    """The id of the call of ``socket`` a worker is running (its row is written while it
    runs: shellflow.engine.records.recorder.RUNNING_AFTER)."""
    rows = poll(lambda: d.query("SELECT id FROM call WHERE name = ? AND state = 'running'",
                                (socket,)), 60, f"a running call of {socket}")  # fmt: skip
    return str(rows[0][0])


def _flow(d: Deployment, *args: str) -> subprocess.Popen[str]:
    from tests.conftest import _flow_executable

    return subprocess.Popen([*_flow_executable(), *args], env={**os.environ, **d.env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _assert_real(proc: subprocess.Popen[str], want: str) -> None:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out == want
    warnings = [line for line in err.splitlines() if "not signed by this deployment" in line]
    assert warnings, err


def test_a_forged_result_never_reaches_a_waiting_one_shot_caller(
    deployment: Deployment, chaos: dict[str, str], client: Client
) -> None:
    d = deployment
    d.start_worker(chaos["processor"])
    caller = _flow(d, "task", "run", "-s", chaos["slow"], "value=real", "seconds:=3",
                   "--timeout", "100")  # fmt: skip
    _forge_results(client, _running_call(d, chaos["slow"]), chaos["slow"])
    _assert_real(caller, "real\n")


def test_a_forged_result_never_reaches_task_result_wait_nor_the_python_api(
    deployment: Deployment, chaos: dict[str, str], client: Client
) -> None:
    from shellflow.engine.calls.sender import wait

    d = deployment
    d.start_worker(chaos["processor"])
    call_id = d.ok("task", "run", "-s", chaos["slow"], "value=real", "seconds:=3",
                   "--async").stdout.strip()  # fmt: skip
    waiter = _flow(d, "task", "result", call_id, "--wait")
    sent = client.send(chaos["slow"], "api", 3)
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(wait(sent, 100)))
    thread.start()
    poll(lambda: d.query("SELECT id FROM call WHERE id IN (?, ?) AND state = 'running'",
                         (call_id, sent.call_id)), 60, "the calls running")  # fmt: skip
    _forge_results(client, call_id, chaos["slow"])
    _forge_results(client, sent.call_id, chaos["slow"])
    _assert_real(waiter, "real\n")
    thread.join(120)
    assert got == ["api"]


def test_a_forged_result_never_reaches_a_stream(
    deployment: Deployment, chaos: dict[str, str], client: Client, tmp_path: Any
) -> None:
    from tests.conftest import _flow_executable

    d = deployment
    d.start_worker(chaos["processor"])
    lines = tmp_path / "lines"
    lines.write_text("one\ntwo\n")
    with lines.open() as given:
        stream = subprocess.Popen(
            [*_flow_executable(), "task", "run", "--stream", "-j", "2", "-s", chaos["slow"],
             "seconds:=3"], env={**os.environ, **d.env}, stdin=given,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    ids = poll(lambda: d.query("SELECT id FROM call WHERE name = ? AND state = 'running'",
                               (chaos["slow"],)), 60, "the stream's calls running")  # fmt: skip
    for (call_id,) in ids:
        _forge_results(client, str(call_id), chaos["slow"])
    _assert_real(stream, "one\ntwo\n")


def test_a_one_shot_caller_ignores_a_result_made_from_a_forged_message_reusing_its_id(
    deployment: Deployment, chaos: dict[str, str], client: Client
) -> None:
    """A worker signs whatever it runs: the result of a message that reused the call's id
    with other arguments is signed too, and names the arguments it ran with."""
    d = deployment
    d.start_worker(chaos["processor"], concurrency=2)
    # The real call runs long enough for the forged one, beside it, to end first.
    caller = _flow(d, "task", "run", "-s", chaos["slow"], "value=real", "seconds:=10",
                   "--timeout", "100")  # fmt: skip
    _forge_message(client, chaos["slow"], _running_call(d, chaos["slow"]), "forged", 0)
    poll(lambda: _refusals(d, chaos["slow"]) >= 1, 60,
         lambda: f"the forged call's refusal:\n{d.worker_log()[-4000:]}")  # fmt: skip
    out, err = caller.communicate(timeout=120)
    assert caller.returncode == 0, err
    assert out == "real\n"
    assert "made from other arguments than it was sent with" in err, err


def test_a_stream_and_the_python_api_ignore_a_result_made_from_a_forged_message_reusing_ids(
    deployment: Deployment, chaos: dict[str, str], client: Client, tmp_path: Any
) -> None:
    """As the one-shot caller: a signed result is taken only if made from the arguments the
    caller sent (``result_signing.expect``), on a stream's own path and Celery's."""
    from tests.conftest import _flow_executable

    d = deployment
    d.start_worker(chaos["processor"], concurrency=2)
    lines = tmp_path / "lines"
    lines.write_text("real\n")
    with lines.open() as given:
        stream = subprocess.Popen(
            [*_flow_executable(), "task", "run", "--stream", "-s", chaos["slow"],
             "seconds:=10", "--timeout", "100"], env={**os.environ, **d.env}, stdin=given,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    _forge_message(client, chaos["slow"], _running_call(d, chaos["slow"]), "forged", 0)
    out, err = stream.communicate(timeout=120)
    assert stream.returncode == 0, err
    assert out == "real\n"
    assert "made from other arguments than it was sent with" in err, err

    sent = client.send(chaos["slow"], "real too", seconds=10)
    _forge_message(client, chaos["slow"], sent.call_id, "forged", 0)
    assert client.wait(sent, timeout=100) == "real too"
