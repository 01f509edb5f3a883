"""Real-time metrics: a real worker's counts, seen by `flow listen -c metrics` and `flow top`,
on both deployments."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import _flow_executable
from tests.engine.conftest import Deployment, build_network

CALLS = 4
_PENDING: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()  # a cut line


def _metrics_until(
    proc: subprocess.Popen[str], socket: str, done: int, timeout: float = 120,
    predicate: Callable[[dict[str, Any]], bool] = lambda data: True,
) -> dict[str, Any] | None:  # fmt: skip
    """The first metrics message of ``socket`` counting ``done`` ended calls (and whose
    ``data`` meets ``predicate``)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    pending = _PENDING.pop(proc, b"")  # a line cut short by the previous read
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 1.0)[0]:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        _PENDING[proc] = pending
        for event in map(json.loads, lines):
            data = event["data"]
            ended = data["finished"] + data["failed"]
            if event["socket"] == socket and ended >= done and predicate(data):
                return event  # the lines after it are older than the next ones: dropped
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
    first = d.ok("listen", "-n", processor, "-c", "metrics", "--count", "1", timeout=120)
    assert json.loads(first.stdout)["channel"] == "metrics"  # the worker publishes them
    everything = subprocess.Popen(  # every channel but metrics, which is only asked for
        [*_flow_executable(), "listen", "-n", processor, "--count", "3"],
        env={**os.environ, **d.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert everything.stderr is not None and everything.stderr.readline().startswith("Listening")
    time.sleep(1.5)  # not a threshold: lets a worker's metrics reach it, were they shown
    try:
        for i in range(CALLS):
            d.ok("task", "run", "-s", network["do_something"], "--data", f'"m{i}"')
        failed = d.run("task", "run", "-s", network["add_two"], "--data", "1")
        assert failed.code != 0  # add_two needs two arguments
        seen = _metrics_until(listen, network["do_something"], CALLS)
        out, _ = everything.communicate(timeout=60)
    finally:
        for proc in (listen, everything):
            proc.kill()
            proc.wait()
    channels = [json.loads(line)["channel"] for line in out.splitlines()]
    assert len(channels) == 3 and "metrics" not in channels, channels
    assert seen is not None
    assert seen["channel"] == "metrics" and seen["room"] == processor
    data = seen["data"]
    assert (data["started"], data["finished"], data["failed"], data["running"]) == (
        CALLS, CALLS, 0, 0,
    )  # fmt: skip
    assert data["queued"] == 0
    assert 0 < data["p50"] <= data["p99"]

    # --interval 5: the first (and only) refresh waits 7.5 s, several reports of a loaded worker
    out = d.ok("top", "-n", processor, "--once", "--interval", "5").stdout
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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples of a Prometheus text page, keyed by name and labels (in any order)."""
    import re

    found = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, labels = head.partition("{")
        pairs = frozenset(re.findall(r'(\w+)="([^"]*)"', labels))
        found[(name, pairs)] = float(value)
    return found


def test_the_agent_serves_its_nodes_metrics_to_prometheus(
    deployment: Deployment, tmp_path: Path
) -> None:
    import urllib.request

    from shellflow.engine.fleet.metrics_export import NAMES
    from tests.engine.agents import agent_log, poll, running_agent
    from tests.engine.repos import examples_repo

    d = deployment
    names = build_network(d)
    processor = names["processor"]
    d.ok("update", "processor", "-n", processor, "-g", str(examples_repo(tmp_path / "repo")))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with running_agent(d, "--node", "mnode", "--metrics-port", f"127.0.0.1:{port}"):
        for i in range(CALLS):
            out = d.ok("task", "run", "-s", names["do_something"], "--data", f'"{i}"',
                       "--timeout", "90")  # fmt: skip
            assert out.stdout == f"TEXT:{i}\n", agent_log(d)
        d.run("task", "run", "-s", names["add_two"], "--data", "1", "--timeout", "90")

        def key(name: str, socket: str, **more: str) -> tuple[str, frozenset[tuple[str, str]]]:
            labels = {"node": "mnode", "processor": processor, "socket": names[socket], **more}
            return (name, frozenset(labels.items()))

        def scraped() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            with urllib.request.urlopen(url, timeout=10) as response:
                page = response.read().decode()
            samples = _samples(page)
            done = samples.get(key("shellflow_calls_finished_total", "do_something"))
            failed = samples.get(key("shellflow_calls_failed_total", "add_two"))
            return samples if (done, failed) == (CALLS, 1) else None

        samples = poll(scraped, 90, "the node's metrics", every=0.5)
    assert samples[key("shellflow_calls_started_total", "do_something")] == CALLS
    assert samples[key("shellflow_calls_failed_total", "do_something")] == 0
    assert samples[key("shellflow_calls_running", "do_something")] == 0
    assert samples[key("shellflow_queue_messages", "do_something")] == 0
    assert samples[key("shellflow_workers", "do_something")] == 1
    assert samples[key("shellflow_calls_started_total", "add_two")] == 1
    assert samples[key("shellflow_calls_finished_total", "add_two")] == 0
    assert samples[key("shellflow_call_latency_seconds", "do_something", quantile="0.99")] > 0
    assert samples[key("shellflow_call_rate", "do_something")] > 0
    assert key("shellflow_calls_started_total", "do_this") in samples  # served, never called
    shown = {name for name, _ in samples}
    assert set(NAMES) <= shown
    documented = (Path(__file__).parents[2] / "docs" / "engine.md").read_text()
    assert all(f"`{name}`" in documented for name in NAMES)


def test_running_counts_the_calls_in_flight_and_forgets_a_terminated_one(
    deployment: Deployment, chaos: dict[str, str]
) -> None:
    """``running`` is the worker's active requests: a call stopped by --terminate (its pool
    process killed mid-call, so it never ends in the counters) is no longer running."""
    d = deployment
    processor, slow = chaos["processor"], chaos["slow"]
    d.start_worker(processor, concurrency=2)
    listen = subprocess.Popen(
        [*_flow_executable(), "listen", "-n", processor, "-c", "metrics"],
        env={**os.environ, **d.env}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        call = d.ok("task", "run", "-s", slow, "--data", '"x"', "seconds:=600", "--async")
        call_id = call.stdout.strip()
        running = _metrics_until(listen, slow, 0, predicate=lambda m: m["running"] == 1)
        assert running is not None and running["data"]["started"] == 1
        d.ok("task", "cancel", call_id, "--terminate")
        stopped = _metrics_until(listen, slow, 0, predicate=lambda m: m["running"] == 0)
        # More calls than the pool runs and prefetches: the rest wait in the queue.
        for _ in range(8):
            d.ok("task", "run", "-s", slow, "--data", '"y"', "seconds:=600", "--async")
        waiting = _metrics_until(listen, slow, 0, predicate=lambda m: (m["queued"] or 0) > 0)
    finally:
        listen.kill()
        listen.wait()
    assert stopped is not None
    data = stopped["data"]
    assert (data["started"], data["finished"], data["running"]) == (1, 0, 0)
    assert waiting is not None and 0 < waiting["data"]["queued"] <= 8
