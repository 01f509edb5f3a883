"""A schedule fires exactly once through a broker outage: a real broker, killed across a due
time, then brought back, gets exactly one call for that due time, which a worker finishes.

The scheduler is driven tick by tick with the due times given (no waiting on a clock); the
broker, the worker and the database are real. The embedded broker is killed by its pid
(``kill -9``, as tests/engine/conftest.py's teardown does) and restarted from its
append-only file; RabbitMQ is a private node (tests/private_rabbitmq.py), stopped with
``stop_app`` and started again, never the shared one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import FlowRunner
from tests.engine.conftest import Deployment, deploy, module_network
from tests.private_rabbitmq import private_rabbitmq
from tests.waiting import poll

INTERVAL = 60  # seconds: no due time comes by itself while the test runs


def _calls(d: Deployment, socket: str) -> list[tuple[str, str]]:
    return [
        (str(i), str(state))
        for i, state in d.query(
            "SELECT c.id, c.state FROM call c JOIN socket s ON s.id = c.socket_id"
            " WHERE s.name = ? ORDER BY c.created",
            (socket,),
        )
    ]


def _events(d: Deployment, call_id: str) -> list[str]:
    rows = d.query("SELECT name FROM event WHERE call_id = ? ORDER BY created", (call_id,))
    return [str(name) for (name,) in rows]


def _across_an_outage(
    d: Deployment, monkeypatch: pytest.MonkeyPatch, down: Callable[[], None],
    up: Callable[[], None],
) -> None:  # fmt: skip
    """Take the broker down across a due time, bring it back: one call, finished."""
    from shellflow.config import load_settings
    from shellflow.engine.fleet.scheduler import Scheduler
    from shellflow.model.call_writes import scheduled_call_id

    names = module_network(d, "hostile", ("pid",))
    socket = names["pid"]
    d.setup("update", "socket", "-n", socket, "--interval", str(INTERVAL))
    for key, value in d.env.items():
        monkeypatch.setenv(key, value)
    scheduler = Scheduler(load_settings(), name="outage")
    t0 = time.time()
    assert scheduler.tick(t0) == []  # first sight: the first due time is t0 + INTERVAL
    down()
    assert scheduler.tick(t0 + INTERVAL) == [socket]  # claimed while the broker is down
    expected = scheduled_call_id(str(d.query("SELECT id FROM socket WHERE name = ?",
                                             (socket,))[0][0]), t0 + INTERVAL)  # fmt: skip
    assert _calls(d, socket) == [(expected, "pending")]
    assert _events(d, expected) == ["scheduled", "unsent"]
    up()
    d.start_worker(names["processor"])
    step = [0.0]

    def ticked_and_finished() -> bool:
        step[0] += 0.1  # later ticks of the same beat: nothing new is due
        assert scheduler.tick(t0 + INTERVAL + step[0]) == []
        return _calls(d, socket) == [(expected, "finished")]

    poll(ticked_and_finished, 120, lambda: f"the call of {socket} to finish: {_calls(d, socket)}")
    assert _events(d, expected) == ["scheduled", "unsent", "sent"]
    for _ in range(3):  # finished: never sent again
        step[0] += 0.1
        assert scheduler.tick(t0 + INTERVAL + step[0]) == []
    assert _calls(d, socket) == [(expected, "finished")]
    assert _events(d, expected).count("sent") == 1


def test_embedded_broker_killed_across_a_due_time(
    flow: FlowRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shellflow.engine.transport import embedded_broker as embedded
    from shellflow.urls import socket_path

    with deploy("embedded", flow) as d:
        from shellflow.config import load_settings

        for key, value in d.env.items():
            monkeypatch.setenv(key, value)
        path = socket_path(load_settings().broker)
        assert path is not None
        embedded.ensure_running(path)

        def down() -> None:
            pid = embedded.pid_of(path)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            poll(lambda: not embedded.answers(path) and not Path(f"/proc/{pid}/cmdline")
                 .exists(), 30, "the embedded broker to die")  # fmt: skip

        _across_an_outage(d, monkeypatch, down, lambda: embedded.ensure_running(path))


def test_private_rabbitmq_stopped_across_a_due_time(
    flow: FlowRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with private_rabbitmq() as rabbit, deploy("distributed", flow, broker=rabbit.url) as d:

        def started() -> bool:
            try:  # refused while the node is still settling after stop_app: tried again
                rabbit.ctl("start_app")
            except subprocess.CalledProcessError:
                return False
            return True

        def up() -> None:
            poll(started, 120, "the private RabbitMQ's start_app")
            poll(rabbit.answers, 60, "the private RabbitMQ to take connections again")

        _across_an_outage(d, monkeypatch, lambda: rabbit.ctl("stop_app"), up)
