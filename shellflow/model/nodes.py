"""What ``flow ls node``/``nodes`` adds to a node's row: its load, room and what it runs.

Read through the light driver-level connection (:mod:`shellflow.model.listing`), in four
queries whatever the number of nodes. ``free_cpus`` is the node's CPUs less those its
deployments occupy (the placement never puts a processor without a hostname beyond them);
``load`` the one-minute load average its agent last reported; ``heartbeat_age`` the seconds
since its agent last wrote (a node silent :data:`LOST_AFTER` seconds is taken for lost and
its processors are placed elsewhere: its ``status`` then reads ``lost``, whatever its agent
last wrote, since an agent killed with ``kill -9`` writes nothing); ``workers`` the worker
processes its agent runs now (as it last reported them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shellflow.model.listing import Reader

COLUMNS = ["status", "load", "free_cpus", "heartbeat_age", "processors", "workers"]
LOST_AFTER = 15.0  # seconds of silence (engine/fleet/placement.py STALE_AFTER is this)


def _moment(raw: Any) -> datetime | None:
    if raw is None:
        return None
    moment = datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def with_fleet(conn: Reader, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (node rows of the listing, by ``name``) with :data:`COLUMNS` added."""
    by_name = {r["name"]: r for r in fleet(conn)}
    for row in rows:
        found = by_name.get(row["name"], {})
        row.update({key: found.get(key) for key in COLUMNS})
    return rows


def fleet(conn: Reader, now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per node, by name (see the module's text for the columns)."""
    now = now or datetime.now(UTC)
    nodes = conn.query(
        "SELECT id, name, hostname, state, status, cpus, cpuload, heartbeat FROM node ORDER BY name"
    )
    placed: dict[str, list[tuple[str, int]]] = {}
    for node_id, processor, cpus in conn.query(
        "SELECT d.node_id, p.name, d.cpus FROM deployment d JOIN processor p"
        " ON p.id = d.processor_id WHERE d.node_id IS NOT NULL ORDER BY p.name"
    ):
        placed.setdefault(node_id, []).append((processor, int(cpus or 0)))
    running: dict[str, int] = dict(
        conn.query(
            "SELECT a.node_id, count(w.id) FROM worker w JOIN agent a ON a.id = w.agent_id"
            " WHERE w.process IS NOT NULL GROUP BY a.node_id"
        )
    )
    rows = []
    for node_id, name, hostname, state, status, cpus, cpuload, heartbeat in nodes:
        here = placed.get(node_id, [])
        beat = _moment(heartbeat)
        age = None if beat is None else round((now - beat).total_seconds(), 1)
        if status == "running" and (age is None or age >= LOST_AFTER):
            status = "lost"
        rows.append({
            "name": name, "hostname": hostname, "state": state or "active", "status": status,
            "cpus": cpus, "load": round(float(cpuload or 0.0) * int(cpus or 0), 2),
            "free_cpus": int(cpus or 0) - sum(c for _, c in here),
            "heartbeat_age": age,
            "processors": [p for p, _ in here], "workers": int(running.get(node_id, 0)),
        })  # fmt: skip
    return rows
