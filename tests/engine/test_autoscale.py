"""Autoscaling by queue depth (``shellflow.engine.worker.autoscale``) with a real worker: the
pool grows under a backlog and shrinks back when idle, every call finishing exactly once,
each decision published on the ``global`` live channel."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.conftest import FlowRunner
from tests.engine.chaos import Client, assert_exactly_once, children_of
from tests.engine.conftest import deploy, module_network
from tests.waiting import poll

CALLS = 60


def _scaling(d: Any, processor: str) -> dict[str, Any]:
    out = d.ok("ls", "processor", "-n", processor, "--json")
    row = json.loads(out.stdout)
    row = row[0] if isinstance(row, list) else row
    return {k: row.get(k) for k in ("workers_current", "workers_desired", "scale_reason")}


def test_the_pool_grows_under_a_backlog_and_shrinks_back_when_idle(
    flow: FlowRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    with deploy("distributed", flow) as d:
        names = module_network(d, "chaos", ("slow",), "-c", "3", "--min-workers", "1",
                               "--max-workers", "3")  # fmt: skip
        events = redis.Redis.from_url(d.env["SHELLFLOW_PUBSUB"]).pubsub()
        events.subscribe("global")
        worker = d.start_worker(names["processor"], concurrency=3)
        client = Client(d, monkeypatch)
        sent = [client.send(names["slow"], i, seconds=0.2) for i in range(CALLS)]
        ceiling = min(3, os.cpu_count() or 1)
        most = [0]

        def pool_size() -> int:  # the worker's pool processes, as the kernel sees them
            most[0] = max(most[0], len(children_of(worker.pid)))
            return most[0]

        if ceiling > 1:
            poll(lambda: pool_size() >= ceiling, 120, "the pool to grow")
        assert sorted(client.wait(s) for s in sent) == list(range(CALLS))
        assert_exactly_once(d, names["slow"], sent)
        poll(lambda: _scaling(d, names["processor"])["workers_current"] == 1, 120,
             lambda: f"the pool to shrink back: {_scaling(d, names['processor'])}")  # fmt: skip
        shown = _scaling(d, names["processor"])
        assert shown["workers_desired"] == 1 and "no call waiting" in shown["scale_reason"]
        poll(lambda: len(children_of(worker.pid)) == 1, 60, "one pool process left")
        assert_exactly_once(d, names["slow"], sent)  # no call ran again as the pool shrank

        seen: list[dict[str, Any]] = []

        def scaled() -> bool:
            while (message := events.get_message(timeout=0.1)) is not None:
                if message["type"] == "message":
                    event = json.loads(message["data"])
                    if event.get("channel") == "scale" and event.get("room") == names["processor"]:
                        seen.append(event)
            states = [e["state"] for e in seen]
            return "grow" in states and "shrink" in states

        poll(scaled, 30, lambda: f"grow and shrink events on global: {seen}")
        grown = [e for e in seen if e["state"] == "grow"]
        assert max(e["data"]["to"] for e in grown) == ceiling
        assert seen[-1]["state"] == "shrink" and seen[-1]["data"]["to"] == 1
        assert all(e["data"]["reason"] for e in seen)
        events.close()
