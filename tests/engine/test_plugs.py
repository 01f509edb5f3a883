"""Plugs and joins: results and errors flow on to other sockets, on both deployments."""

from __future__ import annotations

import json
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conftest import FlowRunner
from tests.engine.conftest import AMQP_URL, ROOT, Deployment, build_network, deploy
from tests.waiting import poll

CALL = "SELECT id, state, result, tracking, parent, args FROM call WHERE name = ? ORDER BY started"


def add_socket(d: Deployment, network: dict[str, str], name: str, function: str,
               processor: str | None = None) -> str:  # fmt: skip
    socket = d.name(name)
    d.setup("add", "socket", "-n", socket, "-q", network["queue"], "-pn",
         processor or network["processor"], "-t", function)  # fmt: skip
    d.broker_queues.append(socket)
    return socket


def plug(d: Deployment, network: dict[str, str], source: str, target: str, *options: str) -> None:
    name = d.name(f"plug.{uuid.uuid4().hex[:6]}")
    d.setup("add", "plug", "-n", name, "-q", network["queue"], "-s", source, "-t", target, *options)


def calls(d: Deployment, socket: str, count: int, timeout: float = 60) -> list[tuple[Any, ...]]:
    """The socket's calls once ``count`` of them have ended; fails naming them at the
    deadline."""

    def ended() -> bool:
        return sum(row[1] in ("finished", "failed") for row in d.query(CALL, (socket,))) >= count

    poll(ended, timeout, lambda: f"{count} ended calls of {socket}: {d.query(CALL, (socket,))}")
    return d.query(CALL, (socket,))


def test_a_result_plug_chains_calls_in_one_flow(
    deployment: Deployment, network: dict[str, str]
) -> None:
    d = deployment
    plug(d, network, network["do_something"], network["do_this"])
    d.start_worker(network["processor"])
    first = d.ok("task", "run", "-s", network["do_something"], "--data", '"x"', "--async")
    first_id = first.stdout.strip()
    (second,) = calls(d, network["do_this"], 1)
    call_id, state, result, flow, parent, args = second
    assert (state, json.loads(result)) == ("finished", "Do this: TEXT:x"), d.worker_log()
    assert parent == first_id
    # both calls belong to the first call's flow run
    assert flow and d.query("SELECT tracking FROM call WHERE id = ?", (first_id,)) == [(flow,)]
    # the value travels as a JSON value: the first positional argument, not JSON text
    assert json.loads(args) == {"args": ["TEXT:x"], "kwargs": {}}
    assert call_id != first_id


def test_error_plugs_fire_on_failure_only(deployment: Deployment, network: dict[str, str]) -> None:
    d = deployment
    invert = add_socket(d, network, "invert", "invert")
    double = add_socket(d, network, "double", "double")
    plug(d, network, invert, double, "-a", "number")
    plug(d, network, invert, network["do_this"], "--type", "error")
    d.start_worker(network["processor"])

    ok_id = d.ok("task", "run", "-s", invert, "--data", "4", "--async").stdout.strip()
    (doubled,) = calls(d, double, 1)
    assert doubled[1:3] == ("finished", "0.5"), d.worker_log()
    assert doubled[4] == ok_id
    assert json.loads(doubled[5]) == {"args": [], "kwargs": {"number": 0.25}}

    failed = d.run("task", "run", "-s", invert, "--data", "0", "--timeout", "60")
    assert failed.code == 1 and "ZeroDivisionError" in failed.stderr
    (failed_id,) = [
        row[0] for row in d.wait_rows("SELECT id FROM call WHERE name = ? AND state = 'failed'",
                                      (invert,), 1)
    ]  # fmt: skip
    # One call of the ERROR plug's target, fed by the failed call only (a worker takes the
    # calls of one queue in order, so a wrong one from the first call would be here too).
    (handled,) = calls(d, network["do_this"], 1)
    assert handled[1] == "finished" and handled[4] == failed_id, d.worker_log()
    (error,) = json.loads(handled[5])["args"]
    assert error == {
        "type": "ZeroDivisionError", "message": "division by zero", "call": failed_id,
        "socket": invert,
    }  # fmt: skip
    assert len(calls(d, double, 1)) == 1  # the RESULT plug did not fire on the failure


def test_fifty_joins_at_once_each_sum_its_own_flow(
    deployment: Deployment, network: dict[str, str]
) -> None:
    """The spec's add_two(one, two) fed by two sockets, arguments arriving in any order."""
    d = deployment
    one = add_socket(d, network, "one", "double")
    two = add_socket(d, network, "two", "square")
    # The target runs on another processor (and its own worker) than its sources.
    summer = d.name("proc2")
    d.setup("add", "processor", "-n", summer, "-g", str(ROOT), "-mp", "examples/processors",
         "-m", "pyfi.processors.sample", "-h", "localhost", "-c", "1")  # fmt: skip
    total = add_socket(d, network, "sum", "add_two", processor=summer)
    plug(d, network, one, total, "-a", "one")
    plug(d, network, two, total, "-a", "two")
    # Two worker processes receive the arguments (two Celery workers of one processor on
    # one host would share a node name, which RabbitMQ refuses for the second one).
    d.start_worker(network["processor"], concurrency=2)
    d.start_worker(summer)

    runs = {str(uuid.uuid4()): n for n in range(50)}
    sends = [(socket, flow, n) for flow, n in runs.items() for socket in (one, two)]
    random.shuffle(sends)

    def send(item: tuple[str, str, int]) -> tuple[str, str]:
        socket, flow, n = item
        data = str(n) if socket == one else str(1000 + n)
        out = d.ok("task", "run", "-s", socket, "--data", data, "--flow", flow, "--async")
        return flow, out.stdout.strip()

    with ThreadPoolExecutor(max_workers=8) as pool:
        sent = list(pool.map(send, sends))
    sources: dict[str, set[str]] = {flow: set() for flow in runs}
    for flow, call_id in sent:
        sources[flow].add(call_id)

    rows = calls(d, total, 50, timeout=120)
    assert len(rows) == 50, d.worker_log()
    by_flow = {row[3]: row for row in rows}
    assert set(by_flow) == set(runs)  # one sum per flow run, none shared
    for flow, n in runs.items():
        _, state, result, _, parent, args = by_flow[flow]
        assert state == "finished"
        assert json.loads(result) == 2 * n + (1000 + n) ** 2
        assert json.loads(args) == {"args": [], "kwargs": {"one": 2 * n, "two": (1000 + n) ** 2}}
        assert parent in sources[flow]
    fed_by = dict(d.query("SELECT tracking, sources FROM call WHERE name = ?", (total,)))
    for flow in runs:  # both calls whose values it summed, the parent among them
        assert set(json.loads(fed_by[flow])) == sources[flow]
    assert d.query("SELECT count(*) FROM join_state") == [(0,)]
    assert d.query("SELECT count(*) FROM call WHERE name = ?", (total,)) == [(50,)]
    assert d.query("SELECT count(*) FROM call WHERE state <> 'finished'") == [(0,)]
    assert d.query("SELECT count(*) FROM event WHERE name = 'plug'") == [(0,)]  # none failed


def test_a_plug_that_cannot_deliver_retries_then_dead_letters_with_a_record(
    flow: FlowRunner,
) -> None:
    """The target's exchange exists on RabbitMQ with another type, so every send along the
    plug is refused: after its retries the planned call is in ``<target>.dead`` and recorded
    failed, and the source call's own result stands. (The embedded Redis transport has no
    such refusal to provoke.)"""
    from kombu import Connection, Exchange

    with deploy("distributed", flow) as d:
        network = build_network(d)
        other = {"queue": d.name("clash.q"), "processor": d.name("clash.p")}
        d.setup("add", "queue", "-n", other["queue"], "-t", "direct")
        d.setup("add", "processor", "-n", other["processor"], "-g", str(ROOT), "-mp",
             "examples/processors", "-m", "pyfi.processors.sample", "-h", "localhost")  # fmt: skip
        target = add_socket(d, other, "clash.do_this", "do_this")
        d.broker_queues.append(target + ".dead")
        d.broker_exchanges.append(other["queue"])
        with Connection(AMQP_URL) as conn:  # same name, another type: declaring it fails
            Exchange(other["queue"], type="fanout", durable=True)(conn.default_channel).declare()
        plug(d, network, network["do_something"], target)
        d.start_worker(network["processor"])
        source = d.ok("task", "run", "-s", network["do_something"], "--data", '"x"', "--async")
        source_id = source.stdout.strip()
        (planned,) = calls(d, target, 1, timeout=120)
        call_id, state, _, run, parent, args = planned
        assert state == "failed" and parent == source_id
        assert d.query("SELECT tracking FROM call WHERE id = ?", (source_id,)) == [(run,)]
        assert json.loads(args) == {"args": ["TEXT:x"], "kwargs": {}}
        error = d.query("SELECT error FROM call WHERE id = ?", (call_id,))[0][0]
        assert "Undeliverable" in error and f"{target}.dead" in error
        assert d.query("SELECT state FROM call WHERE id = ?", (source_id,)) == [("finished",)]
        plug_events = d.query(
            "SELECT note FROM event WHERE call_id = ? AND name = 'plug'", (source_id,)
        )
        assert len(plug_events) == 1 and "did not fire" in plug_events[0][0]
        with Connection(AMQP_URL) as conn:
            message = conn.default_channel.basic_get(target + ".dead", no_ack=True)
        assert message is not None
        body = json.loads(message.body)
        assert (body["id"], body["socket"], body["args"]) == (call_id, target, ["TEXT:x"])
        assert "PRECONDITION" in body["reason"] or "equivalent" in body["reason"]
