"""`flow listen` prints a processor's events live, on both deployments."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

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


def _events_of(
    proc: subprocess.Popen[str], room: str, count: int, timeout: float = 120
) -> list[Any]:
    """The first ``count`` events of ``room`` a global listener prints (the distributed
    deployment's Redis is shared: other tests' events pass through ``global`` as well)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()  # read unbuffered: select() cannot see Python's buffer
    deadline = time.monotonic() + timeout
    found: list[Any] = []
    pending = b""
    while len(found) < count and time.monotonic() < deadline:
        if not select.select([fd], [], [], 1.0)[0]:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        found += [e for e in map(json.loads, lines) if e.get("room") == room]
    proc.kill()
    return found[:count]


def test_listen_prints_task_result_and_log_events(
    deployment: Deployment, network: dict[str, str]
) -> None:
    d = deployment
    d.start_worker(network["processor"])
    task = _listen(d, "-n", network["processor"], "-c", "task", "--count", "3")
    everything = _listen(d, "-n", "global")
    result = d.ok("task", "run", "-s", network["do_something"], "--data", '"hi"').stdout
    try:
        out, _ = task.communicate(timeout=60)
        received = _events_of(everything, network["processor"], 5)
    finally:
        for proc in (task, everything):
            proc.kill()
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["state"] for e in events] == ["received", "prerun", "postrun"]
    assert {e["room"] for e in events} == {network["processor"]}
    assert {e["socket"] for e in events} == {network["do_something"]}
    assert all(e["channel"] == "task" and e["call"] and e["date"] for e in events)
    # The global channel carries every channel: three task events, one printed line, the result.
    assert sorted(e["channel"] for e in received) == ["log", "result", "task", "task", "task"]
    by_channel = {e["channel"]: e for e in received}
    assert by_channel["log"]["data"] == "Do something: hi"
    assert by_channel["result"]["data"] == "TEXT:hi"
    assert result == "TEXT:hi\n"


def test_listen_since_replays_stored_events_then_continues_live(
    deployment: Deployment, network: dict[str, str]
) -> None:
    """Stored events first, then live ones: each event once, in order, on both deployments."""
    d = deployment
    d.start_worker(network["processor"])
    before = datetime.now(UTC).isoformat()
    first = d.ok("task", "run", "-s", network["do_something"], "--data", '"one"', "--async")
    first_id = first.stdout.strip()
    d.wait_for("SELECT state FROM call WHERE id = ?", (first_id,), [("finished",)], timeout=120)
    # Replayed: the first call's task events and its result; then live: the second call's.
    task = _listen(d, "-n", network["processor"], "-c", "task", "--since", before,
                   "--count", "6")  # fmt: skip
    results = _listen(d, "-n", "global", "-c", "result", "--since", "10m")
    d.ok("task", "run", "-s", network["do_something"], "--data", '"two"')
    try:
        out, _ = task.communicate(timeout=120)
        got = _events_of(results, network["processor"], 2)
    finally:
        for proc in (task, results):
            proc.kill()
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["state"] for e in events] == ["received", "prerun", "postrun"] * 2
    assert [e["call"] == first_id for e in events] == [True] * 3 + [False] * 3
    assert len({e["id"] for e in events}) == 6  # no event twice
    assert [e["date"] for e in events] == sorted(e["date"] for e in events)
    assert [e["data"] for e in got] == ["TEXT:one", "TEXT:two"]


def test_listen_since_refuses_a_time_it_cannot_read(deployment: Deployment) -> None:
    result = deployment.run("listen", "-n", "global", "--since", "yesterday-ish")
    assert result.code == 2
    assert "--since" in result.stderr and "Traceback" not in result.stderr
