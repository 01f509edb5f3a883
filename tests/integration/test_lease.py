"""The node's lease (shellflow.engine.fleet.lease) on the model database: what a read
confirms, and when the agent is told to stop its workers (the fleet's side, with frozen
agents: tests/engine/test_failover.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any


def _nodes(url: str, spec: dict[str, tuple[int, str, str]]) -> dict[str, str]:
    """Nodes named by ``spec`` as (heartbeat age in seconds, status, state); ids by name."""
    from shellflow.model.base import utcnow
    from shellflow.model.db import session_scope
    from shellflow.model.infra import Node

    with session_scope(url) as session:
        made = []
        for name, (age, status, state) in spec.items():
            beat = utcnow() - timedelta(seconds=age)
            node = Node(name=name, hostname="m", cpus=2, heartbeat=beat, status=status)
            node.state = state
            session.add(node)
            made.append(node)
        session.flush()
        return {n.name: n.id for n in made}


def _beat(url: str, node_id: str, age: int) -> None:
    from sqlalchemy import update

    from shellflow.engine.fleet.rows import NODE
    from shellflow.model.base import utcnow
    from shellflow.model.db import get_engine

    with get_engine(url).begin() as conn:
        beat = utcnow() - timedelta(seconds=age)
        conn.execute(update(NODE).where(NODE.c.id == node_id).values(heartbeat=beat))


def test_a_read_counts_the_other_live_nodes(initialised_db: str) -> None:
    from shellflow.engine.fleet.lease import read
    from shellflow.model.db import get_engine

    ids = _nodes(initialised_db, {
        "me": (1, "running", "active"), "live": (2, "running", "active"),
        "cordoned": (2, "running", "cordoned"), "drained": (2, "running", "drained"),
        "stale": (60, "running", "active"), "stopped": (1, "stopped", "active"),
    })  # fmt: skip
    engine = get_engine(initialised_db)
    # Only "live" counts: the placement moves work to no cordoned, drained or stale node.
    confirmed = read(engine, ids["me"])
    assert confirmed is not None and confirmed[0] == 1 and confirmed[1] >= 1
    assert read(engine, ids["stale"]) is None  # its own heartbeat is too old: not confirmed
    assert read(engine, ids["me"], lost_after=0) is None


def test_the_lease_lapses_only_with_other_live_nodes(initialised_db: str) -> None:
    from shellflow.engine.fleet.lease import Lease
    from shellflow.model.db import get_engine

    live = (1, "running", "active")
    ids = _nodes(initialised_db, {"me": live, "other": live})
    lost: list[str] = []
    lease = Lease(get_engine(initialised_db), ids["me"], lost.append)
    assert lease.read_once() and lease.others == 1
    assert not lease.check() and lost == []  # just confirmed
    lease.last_good -= lease.lost_after + 1  # as if frozen, or cut off, since
    assert lease.check()
    assert len(lost) == 1 and "lease lost" in lost[0] and "1 other live nodes" in lost[0]
    assert not lease.check() and len(lost) == 1  # told once
    # Its own heartbeat too old in the database (the agent could not write it): no good read.
    _beat(initialised_db, ids["me"], 30)
    assert not lease.read_once() and lease.lapsed
    _beat(initialised_db, ids["me"], 0)
    assert lease.read_once() and not lease.lapsed  # confirmed again: may lapse again later
    # Alone at the last good read: a database outage must not stop the only node serving.
    _beat(initialised_db, ids["other"], 60)
    assert lease.read_once() and lease.others == 0
    lease.last_good -= lease.lost_after + 1
    assert not lease.check() and len(lost) == 1


def test_an_unreachable_database_is_no_good_read(initialised_db: str, tmp_path: Any) -> None:
    from shellflow.engine.fleet.lease import Lease
    from shellflow.model.db import get_engine

    engine = get_engine(f"sqlite:///{tmp_path}/missing/nowhere.db")
    lease = Lease(engine, "x", lambda _: None)
    assert not lease.read_once()
