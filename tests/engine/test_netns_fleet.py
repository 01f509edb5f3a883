"""Three nodes as three hosts (issue 19, point 1): each agent in its own network and UTS
namespace (tests/engine/netns.py), with its own hostname and its own link to private
PostgreSQL, Redis and RabbitMQ servers, and no ``--node``: each node is named by its
hostname. Where namespaces cannot be made the same tests run on agents of this machine with
``--node`` names (a warning in the output says so) and a cut link is a ``SIGSTOP``.
"""

from __future__ import annotations

import json
import socket as pysocket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import FlowRunner
from tests.engine.agents import wait_status
from tests.engine.conftest import Deployment
from tests.engine.fleet import (
    Fleet,
    check_each_call_once,
    lines,
    stale_runs,
    stream_in_two_parts,
)
from tests.engine.netns import node_fleet
from tests.engine.repos import new_repo
from tests.waiting import poll

NODES = ("n1", "n2", "n3")


@pytest.fixture
def nodes(flow: FlowRunner) -> Iterator[Fleet]:
    with node_fleet(flow, NODES) as fleet:
        yield fleet


def test_three_nodes_with_their_own_hostnames_serve_a_processor_on_one(
    nodes: Fleet, tmp_path: Path
) -> None:
    fleet, d = nodes, nodes.d
    proc, socket = fleet.sample_network(tmp_path, "ns")
    for node in NODES:
        fleet.start(node)
    wait_status(d, proc, "running", timeout=180)

    listed = {r["name"]: r for r in map(json.loads, d.ok("ls", "nodes", "--json").stdout.split())}
    assert sorted(listed) == list(NODES)
    hostnames = {name: row["hostname"] for name, row in listed.items()}
    if fleet.namespaced:  # named by their own hostnames, none of them the machine's
        assert hostnames == {node: node for node in NODES}
        assert pysocket.gethostname() not in hostnames.values()
    else:
        assert set(hostnames.values()) == {pysocket.gethostname()}

    # A -c 1 processor without a hostname: placed on one node, whose namespace alone runs
    # worker processes for it; called from the host.
    [first] = fleet.placed_on()
    assert list(fleet.workers()) == [f"{proc}@{first}"]
    running = {node: fleet.processes(node) for node in NODES}
    assert running[first] and all(not running[n] for n in NODES if n != first), running
    out = d.ok("task", "run", "-s", socket, "--data", '"x"', "--timeout", "90")
    assert out.stdout == "TEXT:x\n"
    assert listed[first]["processors"] == [proc] and listed[first]["workers"] == 1


CALLS, FIRST = 200, 80
# The function notes which worker ran it: its pool process's parent, the worker's main process.
ECHO = """import os
import time


def echo(number):
    time.sleep(0.02)
    with open({served!r}, "a") as notes:
        notes.write(f"{{number}} {{os.getppid()}}\\n")
    return number
"""


class Steps:
    """When each of some conditions was first seen true, in seconds after :meth:`mark`;
    checked on every :meth:`until` poll, so that none is missed while waiting for another."""

    def __init__(self, checks: dict[str, Callable[[], bool]]) -> None:
        self.checks, self.start = checks, time.monotonic()
        self.seen: dict[str, float] = {}

    def mark(self) -> None:
        self.start, self.seen = time.monotonic(), {}

    def look(self) -> None:
        for step, check in self.checks.items():
            if step not in self.seen and check():
                self.seen[step] = round(time.monotonic() - self.start, 1)

    def until(self, step: str, timeout: float, what: str) -> None:
        def check() -> bool:
            self.look()
            return step in self.seen

        poll(check, timeout, lambda: f"{what} (seen so far: {self.seen})", every=0.2)


def test_a_node_whose_link_is_cut_loses_its_processor_and_stops_its_stale_worker(
    nodes: Fleet, tmp_path: Path
) -> None:
    fleet, d = nodes, nodes.d
    proc, queue, socket = d.name("cutproc"), d.name("cutq"), d.name("cut.echo")
    served, out = tmp_path / "served.txt", tmp_path / "results.txt"
    repo = new_repo(tmp_path / "repo", {"slow_echo.py": ECHO.format(served=str(served))})
    d.setup("add", "queue", "-n", queue, "-t", "direct")
    d.setup("add", "processor", "-n", proc, "-g", str(repo), "-m", "slow_echo", "-c", "1")
    d.setup("add", "socket", "-n", socket, "-q", queue, "-pn", proc, "-t", "echo")
    d.broker_queues.append(socket)
    d.broker_exchanges.append(queue)
    for node in NODES:
        fleet.start(node)
    wait_status(d, proc, "running", timeout=180)
    [first] = fleet.placed_on()
    [old_pid] = fleet.workers().values()

    resumed = threading.Event()
    stream = stream_in_two_parts(
        d, socket, out, tmp_path / "stream.err", FIRST, CALLS, resumed
    )  # the last calls only once the node is back: for a stale worker to compete for
    steps = Steps({
        "lease lost": lambda: "lease lost" in fleet.log(first),
        "stale worker gone": lambda: not fleet.processes(first),
        "moved": lambda: fleet.placed_on() not in ([first], []),
        "lease confirmed again": lambda: "lease confirmed again" in fleet.log(first),
        "worker on a survivor": lambda: any(not w.endswith(f"@{first}") for w in fleet.workers()),
        "results again": lambda: len(lines(out)) > at_cut,
        f"{FIRST} results": lambda: len(lines(out)) >= FIRST,
    })  # fmt: skip
    cut = False
    try:
        poll(lambda: len(lines(out)) >= 20, 300, "the stream to be under way")
        fleet.cut(first)
        cut, at_cut = True, len(lines(out))
        steps.mark()
        steps.until("moved", 120, "the processor to move")
        steps.until("worker on a survivor", 300, "a worker on a surviving node")
        steps.until("results again", 300, "results again")
        # The call the cut worker held comes back once RabbitMQ gives its connection up
        # (docs/engine.md: the workers' broker heartbeat).
        steps.until(f"{FIRST} results", 600, f"the first {FIRST} results")
        fleet.restore(first)
        cut = False
        restored = dict(steps.seen)
        steps.mark()  # from here on, seconds after the link came back
        resumed.set()
        steps.until("stale worker gone", 120, "the stale worker to exit")
        steps.until("lease confirmed again", 300, f"{first}'s agent to read its lease again")
        assert stream.wait(900) == 0, (tmp_path / "stream.err").read_text()
    finally:
        if cut:
            fleet.restore(first)
        resumed.set()
        if stream.poll() is None:
            stream.kill()
        stream.wait()
    [survivor] = fleet.placed_on()
    print(f"\ncut {first}'s link at result {at_cut}, seconds after the cut: {restored}; "
          f"after the link came back: {steps.seen}")  # fmt: skip

    check_each_call_once(d, socket, out, CALLS, lambda: f"{_unfinished(d, socket)}\n"
                         + _said(fleet, "left in", "dropped", "stop"))  # fmt: skip
    # The stale worker ran calls before the cut and none of those sent once the link was back;
    # its node runs no worker, and the fleet one, on the survivor.
    runs, by_stale = stale_runs(served, old_pid, FIRST)
    assert fleet.processes(first) == []
    poll(lambda: list(fleet.workers()) == [f"{proc}@{survivor}"], 60,
         lambda: f"the worker rows to be the survivor's alone: {fleet.workers()}")  # fmt: skip
    assert "lease lost" in fleet.log(first), fleet.log(first)[-3000:]
    redelivered = d.query(
        "SELECT count(*) FROM event e JOIN call c ON c.id = e.call_id "
        "WHERE c.name = ? AND e.name = 'redelivered'", (socket,),
    )[0][0]  # fmt: skip
    print(
        f"runs {len(runs)} ({len(runs) - len({n for n, _ in runs})} of a call run twice); "
        f"by the stale worker {len(by_stale)}; redelivered events {redelivered}"
    )


def _unfinished(d: Deployment, socket: str) -> str:
    """The calls of ``socket`` not finished, with their events: what a failure needs."""
    rows = d.query("SELECT id, state, args, hostname, worker FROM call WHERE name = ? "
                   "AND state != 'finished'", (socket,))  # fmt: skip
    told = []
    for row in rows:
        events = d.query("SELECT created, name, note FROM event WHERE call_id = ? "
                         "ORDER BY created", (row[0],))  # fmt: skip
        told.append(f"{row}: {events}")
    return "\n".join(told)


def _said(fleet: Fleet, *words: str) -> str:
    """The lines of every node's logs (agent and workers) that hold any of ``words``, and the
    record spools left in the nodes' homes."""
    found = []
    for node, home in fleet.homes.items():
        found += [f"{node} left {p.relative_to(home)} ({p.stat().st_size} bytes)"
                  for p in sorted(home.glob("spool/*/*/*"))]  # fmt: skip
        for path in sorted(home.rglob("*.log")):
            lines = path.read_text(errors="replace").splitlines()
            found += [f"{node} {path.name}: {x}" for x in lines if any(w in x for w in words)]
    return "\n".join(found[-60:])
