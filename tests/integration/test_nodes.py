"""Placement by node (never by a hostname several nodes share), cordon, uncordon, drain and
``flow ls nodes``, on the model database (the agents' side: tests/engine/test_fleet.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any


def _nodes(url: str, spec: dict[str, tuple[str, int, bool]]) -> dict[str, str]:
    """Nodes named by ``spec`` as (hostname, CPUs, alive); their ids by name."""
    from shellflow.model.base import utcnow
    from shellflow.model.db import session_scope
    from shellflow.model.infra import Node

    with session_scope(url) as session:
        made = []
        for name, (host, cpus, alive) in spec.items():
            beat = utcnow() - (timedelta(0) if alive else timedelta(minutes=5))
            node = Node(name=name, hostname=host, cpus=cpus, heartbeat=beat, status="running")
            session.add(node)
            made.append(node)
        session.flush()
        return {n.name: n.id for n in made}


def _place(url: str, strategy: str = "BALANCED") -> list[str]:
    from shellflow.engine.fleet.placement import place
    from shellflow.model.db import session_scope

    with session_scope(url) as session:
        return place(session, strategy)


def _served(url: str, ids: dict[str, str]) -> dict[str, list[str]]:
    """What each node's agent would serve: the processors ``rows.placed`` gives it."""
    from shellflow.engine.fleet import rows
    from shellflow.model.db import get_engine

    engine = get_engine(url)
    return {name: sorted(rows.placed(engine, node_id)) for name, node_id in ids.items()}


def test_nodes_of_one_machine_serve_a_processor_once(cli: Any, initialised_db: str) -> None:
    """Three nodes on one host (three agents of one machine): a -c 1 processor without a
    hostname is served by exactly one of them, and so is one naming the shared host or
    localhost; one naming a node by name goes to that node."""
    ids = _nodes(initialised_db, {n: ("m.example", 2, True) for n in ("n1", "n2", "n3")})
    cli.ok("add", "processor", "-n", "floating", "-g", "/r", "-m", "m", "-c", "1")
    cli.ok("add", "processor", "-n", "hosted", "-g", "/r", "-m", "m", "-h", "m.example")
    cli.ok("add", "processor", "-n", "local", "-g", "/r", "-m", "m", "-h", "localhost")
    cli.ok("add", "processor", "-n", "named", "-g", "/r", "-m", "m", "-h", "n3")
    _place(initialised_db)
    served = _served(initialised_db, ids)
    everything = sorted(p for names in served.values() for p in names)
    assert everything == ["floating", "hosted", "local", "named"], served
    assert "named" in served["n3"]
    # A second pass changes nothing: placements are stable.
    assert _place(initialised_db) == []


def test_cordon_uncordon_and_drain(cli: Any, initialised_db: str) -> None:
    ids = _nodes(initialised_db, {"a": ("a.host", 4, True), "b": ("b.host", 2, True)})
    cli.ok("add", "processor", "-n", "p1", "-g", "/r", "-m", "m", "-c", "1")
    out = cli.ok("node", "cordon", "-n", "a")
    assert "Node 'a': cordoned (was active)" in out.stderr
    _place(initialised_db)
    assert _served(initialised_db, ids) == {"a": [], "b": ["p1"]}  # a has more room: cordoned
    assert "cordoned already" in cli.ok("node", "cordon", "-n", "a").stderr

    cli.ok("node", "uncordon", "-n", "a")
    cli.ok("add", "processor", "-n", "p2", "-g", "/r", "-m", "m", "-c", "1")
    _place(initialised_db)
    assert _served(initialised_db, ids) == {"a": ["p2"], "b": ["p1"]}

    cli.ok("node", "drain", "-n", "b")
    assert _place(initialised_db) == ["moved p1 off b", "placed p1 on a"]
    assert _served(initialised_db, ids) == {"a": ["p1", "p2"], "b": []}
    rows = {
        r["name"]: r
        for r in map(json.loads, cli.ok("ls", "nodes", "--json").stdout.split("\n")[:-1])
    }
    assert (rows["b"]["state"], rows["b"]["processors"], rows["b"]["free_cpus"]) == (
        "drained",
        [],
        2,
    )
    assert (rows["a"]["state"], rows["a"]["processors"], rows["a"]["free_cpus"]) == (
        "active",
        ["p1", "p2"],
        2,
    )
    assert rows["a"]["heartbeat_age"] is not None and rows["a"]["workers"] == 0
    # Draining the last node leaves its processors unplaced, saying why.
    cli.ok("node", "drain", "-n", "a")
    _place(initialised_db)
    assert _served(initialised_db, ids) == {"a": [], "b": []}
    shown = json.loads(cli.ok("ls", "processor", "-n", "p1", "--json").stdout)
    assert "no live node has 1 free CPUs" in shown["status_reason"]
    assert cli("node", "drain", "-n", "nosuch").code == 3


def test_lost_nodes_lose_their_processors_and_hand_made_deployments_are_bound(
    cli: Any, initialised_db: str
) -> None:
    ids = _nodes(initialised_db, {"a": ("h", 2, True), "b": ("h", 2, True), "z": ("z", 8, False)})
    cli.ok("add", "processor", "-n", "p1", "-g", "/r", "-m", "m", "-c", "1")
    cli.ok("add", "deployment", "-n", "d1", "-pn", "p1", "-h", "h")
    changes = _place(initialised_db)
    assert changes == ["bound d1 to a"]
    assert _served(initialised_db, ids) == {"a": ["p1"], "b": [], "z": []}
    from shellflow.model.base import utcnow
    from shellflow.model.db import session_scope
    from shellflow.model.infra import Node

    with session_scope(initialised_db) as session:
        node = session.get(Node, ids["a"])
        assert node is not None
        node.status = "stopped"  # its agent stopped cleanly: no waiting for a stale heartbeat
        node.heartbeat = utcnow()
    assert _place(initialised_db) == ["moved p1 off a", "placed p1 on b"]
    assert _served(initialised_db, ids) == {"a": [], "b": ["p1"], "z": []}


def test_a_silent_node_is_shown_lost(cli: Any, initialised_db: str) -> None:
    """An agent killed with ``kill -9`` never writes ``stopped``: past the placement's
    15 s of silence its node reads ``lost``, not the ``running`` it last wrote."""
    _nodes(initialised_db, {"up": ("h", 2, True), "gone": ("h", 2, False)})
    rows = {
        r["name"]: r for r in map(json.loads, cli.ok("ls", "nodes", "--json").stdout.splitlines())
    }
    assert (rows["up"]["status"], rows["gone"]["status"]) == ("running", "lost")
    assert rows["gone"]["heartbeat_age"] >= 300
    [gone] = [line for line in cli.ok("ls", "nodes").stdout.splitlines() if "gone" in line]
    assert "lost" in gone.split()
