"""A stream's calls are known from the moment they are sent, and a lost service is ridden out.

Every call a stream publishes is recorded ``pending`` at once (``shellflow.client.
stream_records``), so a call whose worker, broker or caller is gone can be found with
``flow ls calls --flow ID -u``. The embedded broker killed mid-stream is started again from
its append-only file by the stream itself, which then completes every call.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from shellflow.engine.calls.sender import ROUTE_TTL
from tests.conftest import FlowRunner, _flow_executable
from tests.engine.chaos import chaos_network
from tests.engine.conftest import Deployment, deploy
from tests.private_postgres import private_postgres
from tests.private_redis import PrivateRedis, private_redis
from tests.waiting import poll


def _stream(d: Deployment, lines: int, socket: str, *options: str) -> subprocess.Popen[str]:
    """``seq LINES | flow task run --stream -s SOCKET OPTIONS``, running in the background."""
    flow = " ".join(_flow_executable())
    env = {**os.environ, **d.env}
    env.pop("SHELLFLOW_FLOW", None)
    script = f"seq {lines} | {flow} task run --stream -s {socket} {' '.join(options)}"
    return subprocess.Popen(
        ["bash", "-c", "set -o pipefail; " + script], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def _finish(stream: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    try:
        out, err = stream.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(stream.pid, 9)
        out, err = stream.communicate()
        raise AssertionError(f"the stream did not end within {timeout:g} s:\n{err}") from None
    return stream.returncode, out, err


def test_a_stream_records_its_calls_pending_before_any_worker_takes_them(
    deployment: Deployment, network: dict[str, str]
) -> None:
    d, n = deployment, network
    stream = _stream(d, 30, n["do_this"], "-j 30")  # no worker yet: all 30 wait in the queue
    try:
        pending = d.wait_for(
            "SELECT count(*), count(DISTINCT tracking) FROM call WHERE state = 'pending'"
            " AND started IS NULL", (), [(30, 1)], timeout=60,
        )  # fmt: skip
        assert pending == [(30, 1)]  # one flow run: 'flow ls calls --flow ID -u' finds them
        flow_id = d.query("SELECT DISTINCT tracking FROM call")[0][0]
        listed = d.ok("ls", "calls", "--flow", flow_id, "-u", "-r", "100", "--json").stdout
        assert len(listed.splitlines()) == 30
    finally:
        d.start_worker(n["processor"], concurrency=2)
        code, out, err = _finish(stream)
    assert code == 0, err
    assert out.splitlines() == [f"Do this: {i}" for i in range(1, 31)]
    done = d.wait_for("SELECT count(*) FROM call WHERE state = 'finished'", (), [(30,)])
    assert done == [(30,)]
    assert d.query("SELECT count(*) FROM call") == [(30,)]  # the worker completed each row


def _broker_pid_file(d: Deployment) -> Path:
    found = list(Path(d.env["SHELLFLOW_HOME"]).rglob("broker.pid"))
    assert len(found) == 1, found
    return found[0]


def _broker_pid(d: Deployment) -> int:
    """The embedded broker's pid, from its pid file in the deployment's home."""
    return int(_broker_pid_file(d).read_text().strip())


ENDED = "SELECT count(*) FROM call WHERE state = 'finished'"


def _unfinished(d: Deployment) -> str:
    """The calls of a stuck stream that have not finished, with their events: what a failure
    message needs to tell a lost message from a lost result."""
    states = d.query("SELECT state, count(*) FROM call GROUP BY state")
    left = d.query(
        "SELECT id, state, celeryid FROM call WHERE state != 'finished' ORDER BY lastupdated"
    )
    lines = [f"call states: {states}"]
    for call_id, state, celeryid in left[:10]:
        events = d.query("SELECT name FROM event WHERE call_id = ? ORDER BY created", (call_id,))
        lines.append(f"  {call_id} {celeryid} {state}: {[name for (name,) in events]}")
    lines.append("worker log (the end):")
    lines.extend(d.worker_log().splitlines()[-40:])
    return "\n".join(lines)


def _ride_out(d: Deployment, lose: Callable[[], None], timeout: float = 120) -> str:
    """Stream 200 calls of the chaos ``slow`` function on two worker processes, ``lose`` a
    service once 20 have finished, and check that all 200 came out in order and that each
    was recorded once and finished; the stream's stderr."""
    names = chaos_network(d)
    d.start_worker(names["processor"], concurrency=2)
    stream = _stream(d, 200, names["slow"], "seconds:=0.02")
    try:
        poll(lambda: d.query(ENDED)[0][0] >= 20, 60, "20 calls of the stream to finish")
        lose()
    except BaseException:  # the stream is not waited for: the failure is said at once
        os.killpg(stream.pid, signal.SIGKILL)
        stream.communicate()
        raise
    try:
        code, out, err = _finish(stream, timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_unfinished(d)}") from None
    assert code == 0, err
    assert out.splitlines() == [str(i) for i in range(1, 201)]
    assert d.wait_for(ENDED, (), [(200,)], timeout=60) == [(200,)]
    assert d.query("SELECT count(*), count(DISTINCT id) FROM call") == [(200, 200)]
    return err


def test_the_embedded_broker_killed_mid_stream_is_restarted_and_every_call_ends(
    flow: FlowRunner,
) -> None:
    killed: list[int] = []

    def kill() -> None:
        killed.append(_broker_pid(d))
        os.kill(killed[0], signal.SIGKILL)

    with deploy("embedded", flow) as d:
        err = _ride_out(d, kill)
        waiting = [line for line in err.splitlines() if "reconnecting" in line]
        assert 1 <= len(waiting) <= 2, err  # one line per lost service (broker, results)
        assert _broker_pid(d) != killed[0]  # started again, by the stream


@contextmanager
def _on_private_redis(flow: FlowRunner) -> Iterator[tuple[Deployment, PrivateRedis]]:
    """The distributed deployment with its results and live channels on a private Redis."""
    with private_redis() as redis, deploy("distributed", flow) as d:
        d.env["SHELLFLOW_BACKEND"] = d.env["SHELLFLOW_PUBSUB"] = redis.url
        yield d, redis


@pytest.mark.services
def test_a_redis_restart_mid_stream_is_ridden_out(flow: FlowRunner) -> None:
    def restart() -> None:
        redis.kill()
        redis.start()  # on the same port, from its append-only file

    with _on_private_redis(flow) as (d, redis):
        _ride_out(d, restart)


@pytest.mark.services
def test_a_result_backend_down_past_the_grace_time_leaves_every_call_findable(
    flow: FlowRunner,
) -> None:
    with _on_private_redis(flow) as (d, redis):
        names = chaos_network(d)
        d.start_worker(names["processor"], concurrency=2)
        stream = _stream(d, 200, names["slow"], "seconds:=0.02", "--reconnect-timeout", "2")
        try:
            poll(lambda: d.query(ENDED)[0][0] >= 20, 60, "20 calls of the stream to finish")
            redis.kill()
            code, out, err = _finish(stream)
        finally:
            redis.start()
        assert code == 6, err
        last = err.strip().splitlines()[-1]
        found = re.search(r"(\d+) calls unaccounted for; see flow ls calls --flow (\S+) -u$", last)
        assert found, err
        assert "Traceback" not in err
        left, flow_id = int(found.group(1)), found.group(2)
        printed = len(out.splitlines())
        # Every call the stream sent is recorded, and ends once Redis is back.
        sent = d.query("SELECT count(*) FROM call WHERE tracking = ?", (flow_id,))[0][0]
        assert left >= 1 and printed + left <= sent
        done = "SELECT count(*) FROM call WHERE tracking = ? AND state = 'finished'"
        assert d.wait_for(done, (flow_id,), [(sent,)], timeout=60) == [(sent,)]


def test_an_agent_starts_its_killed_embedded_broker_again(flow: FlowRunner) -> None:
    from tests.engine.agents import running_agent

    with deploy("embedded", flow) as d, running_agent(d) as agent:
        killed = _broker_pid(d)
        os.kill(killed, signal.SIGKILL)
        poll(lambda: _broker_pid(d) != killed, 30, "the agent to start the broker again")
        assert agent.poll() is None
        assert d.ok("broker", "status").code == 0


@pytest.mark.services
def test_a_postgresql_restart_mid_stream_is_ridden_out(flow: FlowRunner) -> None:
    def restart() -> None:
        pg.stop()  # a fast shutdown: every session ended
        time.sleep(2 * ROUTE_TTL)  # down past the stream's next reading of its route
        pg.start()  # on the same port and data folder (the worker's spool waited for it)

    with private_postgres() as pg, deploy("distributed", flow) as d:
        d.env["SHELLFLOW_DB"] = pg.url
        d.setup("db", "init")
        d.setup("config", "set", "repos.allow", "file://*")  # a new database allows nothing
        _ride_out(d, restart)


@pytest.mark.services
def test_a_rabbitmq_restart_mid_stream_is_ridden_out(flow: FlowRunner) -> None:
    from tests.private_rabbitmq import private_rabbitmq

    def restart() -> None:
        rabbit.ctl("stop_app")
        rabbit.ctl("start_app")

    with private_rabbitmq() as rabbit, deploy("distributed", flow, broker=rabbit.url) as d:
        _ride_out(d, restart, timeout=180)


@pytest.mark.services
def test_agent_status_says_which_service_is_down(flow: FlowRunner) -> None:
    import json

    with _on_private_redis(flow) as (d, redis):
        shown = json.loads(d.run("agent", "status", "--json").stdout)
        assert (shown["broker"], shown["backend"], shown["pubsub"]) == ("up", "up", "up")
        redis.kill()
        shown = json.loads(d.run("agent", "status", "--json").stdout)
        assert shown["broker"] == "up"
        assert shown["backend"].startswith("down: ") and str(redis.port) in shown["backend"]
        assert shown["pubsub"] == shown["backend"]


def test_messages_held_when_the_embedded_broker_died_are_requeued_when_it_starts(
    flow: FlowRunner,
) -> None:
    """A worker cannot acknowledge, on a new connection, what it took on one that died with
    the broker: whoever starts the broker again requeues those messages at once
    (``unacked.requeue_all``), not after the hour of the visibility timeout."""
    from shellflow.engine.records.events import redis_client

    with deploy("embedded", flow) as d:
        names = chaos_network(d)
        d.start_worker(names["processor"], concurrency=1)
        call_id = d.ok("task", "run", "-s", names["slow"], "--data", "7", "seconds:=3",
                       "--async").stdout.strip()  # fmt: skip
        running = "SELECT state FROM call WHERE id = ?"
        d.wait_for(running, (call_id,), [("running",)], timeout=60)
        broker = f"redis+socket://{_broker_pid_file(d).with_name('broker.sock')}"
        os.kill(_broker_pid(d), signal.SIGKILL)
        d.ok("broker", "start")  # from its append-only file, where the message is unacked
        assert redis_client(broker).hlen("unacked") == 0  # handed back to its queue
        final = d.wait_for(running, (call_id,), [("finished",)], timeout=120)
        assert final == [("finished",)]
        redelivered = "SELECT count(*) FROM event WHERE call_id = ? AND name = 'redelivered'"
        assert d.wait_for(redelivered, (call_id,), [(1,)]) == [(1,)]  # it ran again, one row


@pytest.mark.services
def test_a_one_shot_call_whose_backend_is_lost_says_where_its_result_will_be(
    flow: FlowRunner,
) -> None:
    with _on_private_redis(flow) as (d, redis):
        names = chaos_network(d)
        d.start_worker(names["processor"], concurrency=1)
        env = {**os.environ, **d.env}
        one = subprocess.Popen(
            [*_flow_executable(), "task", "run", "-s", names["slow"], "--data", "7",
             "seconds:=3"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            running = "SELECT id FROM call WHERE state = 'running'"
            poll(lambda: d.query(running), 60, "the call to start")
            call_id = d.query(running)[0][0]
            redis.kill()
            out, err = one.communicate(timeout=60)
        finally:
            if one.poll() is None:
                one.kill()
                one.wait()
            redis.start()
        assert one.returncode == 6 and out == "", err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert err.rstrip().endswith(f"call {call_id} was sent: flow task result {call_id} --wait")
        assert d.ok("task", "result", call_id, "--wait", "--timeout", "60").stdout == "7\n"
