"""Real-time metrics: a real worker's counts, seen by `flow listen -c metrics` and `flow top`,
on both deployments."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from typing import Any

from tests.conftest import _flow_executable
from tests.engine.conftest import Deployment

CALLS = 4


def _metrics_until(
    proc: subprocess.Popen[str], socket: str, done: int, timeout: float = 120
) -> dict[str, Any] | None:
    """The first metrics message of ``socket`` counting ``done`` ended calls."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    pending = b""
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 1.0)[0]:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for event in map(json.loads, lines):
            data = event["data"]
            if event["socket"] == socket and data["finished"] + data["failed"] >= done:
                return event
    return None


def test_worker_metrics_reach_listen_and_top(
    deployment: Deployment, network: dict[str, str]
) -> None:
    d = deployment
    processor = network["processor"]
    d.start_worker(processor, concurrency=2)
    listen = subprocess.Popen(
        [*_flow_executable(), "listen", "-n", processor, "-c", "metrics"],
        env={**os.environ, **d.env}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for i in range(CALLS):
            d.ok("task", "run", "-s", network["do_something"], "--data", f'"m{i}"')
        failed = d.run("task", "run", "-s", network["add_two"], "--data", "1")
        assert failed.code != 0  # add_two needs two arguments
        seen = _metrics_until(listen, network["do_something"], CALLS)
    finally:
        listen.kill()
        listen.wait()
    assert seen is not None
    assert seen["channel"] == "metrics" and seen["room"] == processor
    data = seen["data"]
    assert (data["started"], data["finished"], data["failed"], data["running"]) == (
        CALLS, CALLS, 0, 0,
    )  # fmt: skip
    assert data["queued"] == 0
    assert 0 < data["p50"] <= data["p99"]

    out = d.ok("top", "-n", processor, "--once").stdout
    rows = {row["socket"]: row for row in map(json.loads, out.splitlines())}
    assert set(rows) == {network["do_something"], network["add_two"], network["do_this"]}
    something, add_two, do_this = (rows[network[k]] for k in ("do_something", "add_two",
                                                                "do_this"))  # fmt: skip
    assert (something["started"], something["finished"], something["failed"]) == (CALLS, CALLS, 0)
    assert (add_two["started"], add_two["finished"], add_two["failed"]) == (1, 0, 1)
    assert (do_this["started"], do_this["finished"], do_this["failed"]) == (0, 0, 0)
    assert do_this["p50"] is None and something["p99"] > 0
    assert something["workers"] == 1 and something["processor"] == processor
    assert something["queued"] == 0 and something["running"] == 0
