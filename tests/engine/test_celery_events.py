"""Celery's own tools see the fleet: with ``--celery-events`` a real worker sends Celery's
task events (what ``celery events`` and Flower read), without it none. On both deployments;
the events are captured with Celery's own ``EventReceiver`` on the deployment's broker."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.engine.agents import agent_log, running_agent, wait_status
from tests.engine.conftest import Deployment, build_network
from tests.engine.repos import examples_repo
from tests.waiting import poll


@contextmanager
def captured(d: Deployment) -> Iterator[list[dict[str, Any]]]:
    """Every Celery event the broker carries while the block runs (its queue is bound
    before the block starts)."""
    from shellflow.config import load_settings
    from shellflow.engine.transport.celery_app import make_app

    app = make_app(load_settings(environ={**os.environ, **d.env}))
    events: list[dict[str, Any]] = []
    ready = threading.Event()
    connection = app.connection_for_read()
    receiver = app.events.Receiver(connection, handlers={"*": events.append})
    receiver.on_consume_ready = lambda *a, **k: ready.set()  # type: ignore[method-assign]
    thread = threading.Thread(target=receiver.capture, kwargs={"wakeup": False}, daemon=True)
    thread.start()
    try:
        assert ready.wait(60), "the event receiver did not start"
        yield events
    finally:
        receiver.should_stop = True
        thread.join(30)
        connection.release()


def of_worker(events: list[dict[str, Any]], pid: int) -> list[str]:
    return [e["type"] for e in events if f".{pid}@" in str(e.get("hostname", ""))]


def test_workers_send_celery_task_events_with_the_flag_alone(
    deployment: Deployment, tmp_path: Path
) -> None:
    d = deployment
    names = build_network(d)
    socket = names["do_something"]
    with captured(d) as events:
        d.start_worker(names["processor"])  # no --celery-events
        assert d.ok("task", "run", "-s", socket, "--data", '"a"', "--timeout", "90").stdout == (
            "TEXT:a\n"
        )
        d.kill_workers()

        # An agent started with --celery-events starts its workers with it.
        repo = examples_repo(tmp_path / "repo")
        d.ok("update", "processor", "-n", names["processor"], "-g", str(repo))
        with running_agent(d, "--celery-events"):
            out = d.ok("task", "run", "-s", socket, "--data", '"b"', "--timeout", "90")
            assert out.stdout == "TEXT:b\n", agent_log(d)
            wait_status(d, names["processor"], "running")
            [(served,)] = d.query("SELECT process FROM worker WHERE process IS NOT NULL")
            pid = int(str(served).split("-")[0])
            poll(lambda: "task-succeeded" in of_worker(events, pid), 60,
                 lambda: f"task-succeeded from the agent's worker: {events!r}")  # fmt: skip
    sent = of_worker(events, pid)
    assert {"task-received", "task-started", "task-succeeded"} <= set(sent), sent
    assert "worker-online" in sent  # its heartbeats too: Flower lists it
    # The worker without the flag sent none: every event of this processor's workers
    # (their Celery names are PROCESSOR.PID@HOST) came from the agent's.
    senders = {str(e.get("hostname")) for e in events}
    assert {h for h in senders if h.startswith(names["processor"] + ".")} == {
        f"{names['processor']}.{pid}@{os.uname().nodename}"}  # fmt: skip
