"""`flow listen` prints a processor's events live, on both deployments."""

from __future__ import annotations

import json
import os
import subprocess

from tests.conftest import _flow_executable
from tests.engine.conftest import Deployment


def _listen(d: Deployment, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*_flow_executable(), "listen", *args], env={**os.environ, **d.env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    assert proc.stderr.readline().startswith("Listening to")  # subscribed before we call
    return proc


def test_listen_prints_task_result_and_log_events(
    deployment: Deployment, network: dict[str, str]
) -> None:
    d = deployment
    d.start_worker(network["processor"])
    task = _listen(d, "-n", network["processor"], "-c", "task", "--count", "3")
    everything = _listen(d, "-n", "global", "--count", "5")
    result = d.ok("task", "run", "-s", network["do_something"], "--data", '"hi"').stdout
    try:
        out, _ = task.communicate(timeout=60)
        every, _ = everything.communicate(timeout=60)
    finally:
        for proc in (task, everything):
            proc.kill()
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["state"] for e in events] == ["received", "prerun", "postrun"]
    assert {e["room"] for e in events} == {network["processor"]}
    assert {e["socket"] for e in events} == {network["do_something"]}
    assert all(e["channel"] == "task" and e["call"] and e["date"] for e in events)
    # The global channel carries every channel: three task events, one printed line, the result.
    received = [json.loads(line) for line in every.splitlines()]
    assert sorted(e["channel"] for e in received) == ["log", "result", "task", "task", "task"]
    by_channel = {e["channel"]: e for e in received}
    assert by_channel["log"]["data"] == "Do something: hi"
    assert by_channel["result"]["data"] == "TEXT:hi"
    assert result == "TEXT:hi\n"
