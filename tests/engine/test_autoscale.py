"""Autoscaling by queue depth (``shellflow.engine.worker.autoscale``) with a real worker, on
both deployments: the pool grows under a backlog and shrinks back when idle, every call
finishing exactly once, each decision printed by ``flow listen -n global``."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FlowRunner
from tests.engine.agents import agent_log, running_agent, worker_pids
from tests.engine.chaos import Client, assert_exactly_once, children_of
from tests.engine.conftest import AMQP_URL, Deployment, deploy, module_network
from tests.engine.repos import examples_repo
from tests.engine.test_listen import _listen
from tests.waiting import poll

CALLS = 60


def _scaling(d: Deployment, processor: str) -> dict[str, Any]:
    row = json.loads(d.ok("ls", "processor", "-n", processor, "--json").stdout)
    return {k: row.get(k) for k in ("workers_current", "workers_desired", "scale_reason")}


def _scale_events(listener: subprocess.Popen[str], room: str, timeout: float = 60) -> list[Any]:
    """The ``scale`` events of ``room`` the listener printed, up to its shrink back to one
    process (other tests' events pass through the shared Redis's ``global`` as well)."""
    assert listener.stdout is not None
    fd = listener.stdout.fileno()  # unbuffered: select() cannot see Python's buffer
    deadline, pending, found = time.monotonic() + timeout, b"", []
    while time.monotonic() < deadline:
        if found and found[-1]["state"] == "shrink" and found[-1]["data"]["to"] == 1:
            break
        if not select.select([fd], [], [], 1.0)[0]:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        events = [json.loads(line) for line in lines if line.strip()]
        found += [e for e in events if e.get("channel") == "scale" and e.get("room") == room]
    return found


def test_the_pool_grows_under_a_backlog_and_shrinks_back_when_idle(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = deployment
    names = module_network(d, "chaos", ("slow",), "-c", "3", "--min-workers", "1",
                           "--max-workers", "3")  # fmt: skip
    worker = d.start_worker(names["processor"], concurrency=3)
    listener = _listen(d, "-n", "global")
    try:
        client = Client(d, monkeypatch)
        sent = [client.send(names["slow"], i, seconds=0.2) for i in range(CALLS)]
        ceiling = min(3, os.cpu_count() or 1)  # never beyond the node's CPUs
        most = [0]

        def grown() -> bool:  # the worker's pool processes, as the kernel sees them
            most[0] = max(most[0], len(children_of(worker.pid)))
            return most[0] >= ceiling

        poll(grown, 120, lambda: f"the pool to grow to {ceiling}: at most {most[0]}")
        assert most[0] <= ceiling
        assert sorted(client.wait(s) for s in sent) == list(range(CALLS))
        assert_exactly_once(d, names["slow"], sent)
        poll(lambda: _scaling(d, names["processor"])["workers_current"] == 1, 120,
             lambda: f"the pool to shrink back: {_scaling(d, names['processor'])}")  # fmt: skip
        shown = _scaling(d, names["processor"])
        assert shown["workers_desired"] == 1 and "no call waiting" in shown["scale_reason"]
        poll(lambda: len(children_of(worker.pid)) == 1, 60, "one pool process left")
        assert_exactly_once(d, names["slow"], sent)  # no call ran again as the pool shrank
        seen = _scale_events(listener, names["processor"])
        worker.terminate()  # a warm shutdown: what it reported is cleared
        poll(lambda: _scaling(d, names["processor"])["scale_reason"] == "worker stopped", 60)
        assert _scaling(d, names["processor"])["workers_current"] is None
    finally:
        listener.kill()
        listener.wait()
    states = [e["state"] for e in seen]
    assert "grow" in states and states[-1] == "shrink", seen
    assert max(e["data"]["to"] for e in seen if e["state"] == "grow") == ceiling
    assert seen[-1]["data"] == seen[-1]["data"] | {"from": ceiling, "to": 1}
    assert all(e["data"]["reason"] for e in seen)
    assert "queue depth unknown" not in d.worker_log()  # the broker's count was read


def test_a_worker_started_by_the_agent_autoscales(
    flow: FlowRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The agent's worker (its own virtualenv, settings on a descriptor) reads the bounds
    and reports into the processor row like any other."""
    with deploy("distributed", flow, AMQP_URL) as d:
        names = module_network(d, "chaos", ("slow",), "-c", "2", "--min-workers", "1",
                               "--max-workers", "2")  # fmt: skip
        d.ok("update", "processor", "-n", names["processor"], "-g",
             str(examples_repo(tmp_path / "repo")))  # fmt: skip
        with running_agent(d):
            client = Client(d, monkeypatch)
            sent = [client.send(names["slow"], i, seconds=0.2) for i in range(CALLS)]
            ceiling = min(2, os.cpu_count() or 1)
            poll(lambda: (_scaling(d, names["processor"])["workers_desired"] or 0) >= ceiling,
                 180, lambda: f"the pool to grow: {_scaling(d, names['processor'])}\n"
                 + agent_log(d))  # fmt: skip
            assert len(worker_pids(d)) == 1  # one worker, its pool grown
            assert sorted(client.wait(s) for s in sent) == list(range(CALLS))
            assert_exactly_once(d, names["slow"], sent)
