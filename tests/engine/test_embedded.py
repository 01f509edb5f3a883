"""The embedded broker: started on demand, shared, and keeping queued calls across restarts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FlowRunner
from tests.engine.conftest import Deployment, build_network, deploy


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
