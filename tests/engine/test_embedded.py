"""The embedded broker: started on demand, shared, and keeping queued calls across restarts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from shellflow.engine.records.events import redis_client
from tests.conftest import FlowRunner
from tests.engine.chaos import Client, assert_exactly_once, chaos_network, children_of, poll
from tests.engine.conftest import Deployment, build_network, deploy

RUNNING = "SELECT id FROM call WHERE name = ? AND state = 'running'"
REDELIVERED = (
    "SELECT count(*) FROM event e JOIN call c ON c.id = e.call_id"
    " WHERE c.name = ? AND e.name = 'redelivered'"
)


@pytest.fixture
def embedded(flow: FlowRunner) -> Iterator[Deployment]:
    with deploy("embedded", flow) as deployment:
        yield deployment


@pytest.fixture
def network(embedded: Deployment) -> dict[str, str]:
    return build_network(embedded)


def test_queued_calls_survive_a_broker_restart(
    embedded: Deployment, network: dict[str, str]
) -> None:
    d = embedded
    call_id = d.ok(
        "task", "run", "-s", network["do_something"], "--data", '"kept"', "--async"
    ).stdout.strip()
    assert "stopped" in d.ok("broker", "stop").stderr
    assert d.run("broker", "status").code == 6
    d.start_worker(network["processor"])  # starts the broker again from its append-only file
    expect = [("finished", json.dumps("TEXT:kept"))]
    assert d.wait_for("SELECT state, result FROM call WHERE id = ?", (call_id,), expect) == expect


def test_broker_status_and_long_socket_path(embedded: Deployment, tmp_path: Path) -> None:
    d = embedded
    d.ok("broker", "start")
    assert d.ok("broker", "status").code == 0
    deep = tmp_path / ("x" * 120)
    result = d.run("broker", "start", env={"SHELLFLOW_HOME": str(deep)})
    assert result.code == 6
    assert "shorter folder" in result.stderr


def test_calls_held_by_a_killed_worker_come_back_when_a_worker_starts(
    embedded: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 of a worker's main process (and its pool): its unacknowledged messages are
    requeued when the next worker starts, not an hour later
    (``shellflow.engine.transport.unacked``)."""
    d = embedded
    chaos = chaos_network(d)
    client = Client(d, monkeypatch)
    worker = d.start_worker(chaos["processor"], concurrency=2)
    sent = [client.send(chaos["slow"], i, seconds=3) for i in range(4)]
    # Both pool processes are running a call, so the main process holds two messages.
    assert poll(lambda: len(d.query(RUNNING, (chaos["slow"],))) == 2, timeout=120)
    pool = children_of(worker.pid)
    os.kill(worker.pid, signal.SIGKILL)
    for pid in pool:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    worker.wait()
    held = redis_client(client.settings.broker).hlen("unacked")
    assert held == 2  # without a worker to give them back, they stay taken
    d.start_worker(chaos["processor"], concurrency=2)
    assert [client.wait(s, timeout=300) for s in sent] == [0, 1, 2, 3]
    assert_exactly_once(d, chaos["slow"], sent)
    events = d.query(REDELIVERED, (chaos["slow"],))
    assert events == [(2,)]  # the two killed calls ran again, the same rows
