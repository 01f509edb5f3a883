"""A processor asking for more CPUs than one node has, served by two nodes as shares summing
to exactly its ask (``shellflow.engine.fleet.spread``): under a backlog both shares grow,
idle both shrink, and a worker retired meanwhile (its node drained: a warm shutdown) loses
and repeats no call.

The nodes are two agents of this one machine (``tests.engine.fleet``), each announcing
2 CPUs (``flow agent start --cpus 2``); the processor asks for 4.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.engine.agents import processor, wait_status
from tests.engine.chaos import Client, assert_exactly_once
from tests.engine.fleet import Fleet
from tests.engine.repos import examples_repo
from tests.waiting import poll

CALLS = 80


def _network(fleet: Fleet, tmp_path: Path) -> tuple[str, str]:
    """A ``-c 4`` processor of the examples' chaos module (no hostname) autoscaling between
    1 and 4 processes, and its ``slow`` socket; their names."""
    d = fleet.d
    proc, queue, socket = d.name("spread"), d.name("spreadq"), d.name("spread.slow")
    d.setup("add", "queue", "-n", queue, "-t", "direct")
    d.setup("add", "processor", "-n", proc, "-g", str(examples_repo(tmp_path / "repo")),
            "-mp", "examples/processors", "-m", "pyfi.processors.chaos", "-c", "4",
            "--min-workers", "1", "--max-workers", "4")  # fmt: skip
    d.setup("add", "socket", "-n", socket, "-q", queue, "-pn", proc, "-t", "slow")
    d.broker_queues += [socket, socket + ".dead"]
    d.broker_exchanges.append(queue)
    return proc, socket


def _shares(fleet: Fleet, proc: str) -> dict[str, dict[str, Any]]:
    """The processor's deployments as ``flow ls processor --json`` shows them, by node."""
    return {s["node"]: s for s in processor(fleet.d, proc)["deployments"]}


def test_a_processor_larger_than_a_node_is_served_by_two_that_grow_and_shrink(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = fleet.d
    proc, socket = _network(fleet, tmp_path)
    for node in ("n1", "n2"):
        fleet.start(node)
    poll(lambda: sorted(fleet.workers()) == [f"{proc}@n1", f"{proc}@n2"], 180,
         lambda: f"a worker on each node: {fleet.workers()}\n{fleet.log('n1')}")  # fmt: skip
    wait_status(d, proc, "running", timeout=120)
    shares = _shares(fleet, proc)
    assert {n: s["cpus"] for n, s in shares.items()} == {"n1": 2, "n2": 2}  # exactly the ask
    lines = d.ok("ls", "nodes", "--json").stdout.splitlines()
    nodes = {r["name"]: r for r in map(json.loads, lines)}
    assert nodes["n1"]["free_cpus"] == 0 and nodes["n2"]["free_cpus"] == 0

    # A backlog: each share grows to its ceiling (2 processes: its CPUs, half of
    # --max-workers), the processor row showing their sum.
    client = Client(d, monkeypatch)
    sent = [client.send(socket, i, seconds=0.3) for i in range(CALLS)]

    def grown() -> bool:
        found = _shares(fleet, proc)
        return all((found[n]["workers_current"] or 0) == 2 for n in ("n1", "n2"))

    poll(grown, 90, lambda: f"both shares to grow to 2: {_shares(fleet, proc)}")
    row = processor(d, proc)
    assert row["workers_current"] == 4 and row["workers_current"] <= row["max_workers"]
    assert sorted(client.wait(s) for s in sent) == list(range(CALLS))
    assert_exactly_once(d, socket, sent)

    # Idle: both shrink back to their floor (one process each), retiring processes that
    # run no call.
    poll(lambda: all(s["workers_current"] == 1 for s in _shares(fleet, proc).values()), 90,
         lambda: f"both shares to shrink: {_shares(fleet, proc)}")  # fmt: skip
    assert all(s["workers_desired"] == 1 for s in _shares(fleet, proc).values())
    assert processor(d, proc)["workers_current"] == 2
    assert_exactly_once(d, socket, sent)

    # A worker retired while calls run (n2 drained: a warm shutdown): every call finishes
    # once, on n1's share (n1 has no room for n2's CPUs: they stay unplaced).
    more = [client.send(socket, i, seconds=0.3) for i in range(CALLS, 2 * CALLS)]
    # n2's share grown again: its processes run calls of the new backlog as it is drained.
    poll(lambda: _shares(fleet, proc)["n2"]["workers_current"] == 2, 60, "n2 to grow")
    d.ok("node", "drain", "-n", "n2")
    poll(lambda: list(fleet.workers()) == [f"{proc}@n1"], 90,
         lambda: f"n2's worker to stop: {fleet.workers()}")  # fmt: skip
    assert sorted(client.wait(s) for s in more) == list(range(CALLS, 2 * CALLS))
    assert_exactly_once(d, socket, sent + more)
    assert {n: s["cpus"] for n, s in _shares(fleet, proc).items()} == {"n1": 2}  # no room
