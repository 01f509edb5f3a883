"""Three nodes as three hosts (issue 19, point 1): each agent in its own network and UTS
namespace (tests/engine/netns.py), with its own hostname and its own link to private
PostgreSQL, Redis and RabbitMQ servers, and no ``--node``: each node is named by its
hostname. Where namespaces cannot be made the same tests run on agents of this machine with
``--node`` names (a warning in the output says so) and a cut link is a ``SIGSTOP``.
"""

from __future__ import annotations

import json
import socket as pysocket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FlowRunner
from tests.engine.agents import wait_status
from tests.engine.fleet import Fleet
from tests.engine.netns import node_fleet

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
