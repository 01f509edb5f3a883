"""Metrics kept for analysis from real calls, on both deployments: the queue depth sampled
from the broker while calls wait, then the calls a worker ran, rolled up per minute.

The roll-up is driven directly (the agent holding the lease runs it once a minute)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

from tests.engine.conftest import Deployment


def _roll(d: Deployment, now: datetime, broker: bool) -> None:
    from shellflow.config import load_settings
    from shellflow.engine.fleet.rollup import roll_up
    from shellflow.model.db import get_engine

    settings = load_settings(environ={**os.environ, **d.env})
    roll_up(get_engine(d.env["SHELLFLOW_DB"]), now, settings.broker if broker else None)


def test_calls_waiting_then_run_are_kept_per_minute(
    deployment: Deployment, network: dict[str, str]
) -> None:
    d = deployment
    socket, failing = network["do_something"], network["add_two"]
    for i in range(3):
        d.ok("task", "run", "-s", socket, "--data", f'"{i}"', "--async")
    _roll(d, datetime.now(UTC), broker=True)  # no worker yet: three calls wait in the queue
    sampled = [json.loads(line) for line in d.ok("ls", "metrics", "--json").stdout.splitlines()]
    assert [(r["socket"], r["calls"], r["queue_depth"]) for r in sampled] == [(socket, 0, 3)]

    d.start_worker(network["processor"])
    assert d.run("task", "run", "-s", failing, "one:=1", "--timeout", "60").code == 1
    d.wait_for("SELECT count(*) FROM call WHERE state IN ('finished', 'failed')", (), [(4,)])
    _roll(d, datetime.now(UTC) + timedelta(minutes=1), broker=True)  # their minute is whole
    rows = [json.loads(line) for line in d.ok("ls", "metrics", "--json").stdout.splitlines()]
    mine = [r for r in rows if r["socket"] == socket]
    assert sum(r["calls"] for r in mine) == 3
    assert sum(r["failures"] for r in mine) == 0
    assert all(r["p50"] is not None and r["max"] >= r["p99"] >= r["p50"] >= 0
               for r in mine if r["calls"])  # fmt: skip
    assert 3 in [r["queue_depth"] for r in mine]  # the sample kept through the roll-up
    failed = [r for r in rows if r["socket"] == failing]
    assert [(r["calls"], r["failures"]) for r in failed] == [(1, 1)]
    shown = d.ok("ls", "metrics", "--socket", failing).stdout.splitlines()
    assert [line.split("\t")[0] for line in shown] == [failing]
