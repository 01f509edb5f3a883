"""Placing processors onto nodes, by free CPUs (spec: micro-scheduling).

Every processor a node serves has a Deployment row naming that node; an agent serves only
the deployments of its own node (never by hostname: several agents of one machine are
several nodes). A processor without a hostname may go to any live, active node; one with a
hostname goes to a live, active node of that host (a node named so, or whose machine has
that hostname; ``localhost`` means any node), even beyond its free CPUs: the hostname is an
order. A deployment added by hand names a host only: it is bound to one node of that host.

BALANCED spreads work: a processor goes to the live node with the most free CPUs.
EFFICIENT packs it: to the live node with the fewest free CPUs that still fit it, leaving
whole nodes free for large processors. Neither places a floating processor beyond a node's
CPUs: one that no node can hold is spread over several as shares summing to exactly its
CPUs (:mod:`shellflow.engine.fleet.spread`). A node whose agent stopped heartbeating (or
stopped) loses its placements, which are made again elsewhere; so does a drained node
(``flow node drain``); a cordoned node keeps what it has and gets nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

import shellflow.model.tables  # noqa: F401  (registers every mapper)
from shellflow.engine.fleet.spread import fill
from shellflow.model.base import utcnow
from shellflow.model.infra import Deployment, Node
from shellflow.model.network import Processor
from shellflow.model.nodes import LOST_AFTER

STALE_AFTER = timedelta(seconds=LOST_AFTER)  # what `flow ls nodes` shows as lost
ANY_HOST = ("localhost", "127.0.0.1", "::1")


@dataclass
class NodeRoom:
    name: str
    hostname: str
    cpus: int
    used: int
    id: str = ""

    @property
    def free(self) -> int:
        return self.cpus - self.used


def choose(rooms: Sequence[NodeRoom], cpus: int, strategy: str) -> NodeRoom | None:
    """The node a processor needing ``cpus`` goes to, or None when none has room."""
    fitting = [r for r in rooms if r.free >= cpus]
    if not fitting:
        return None
    # Ties go to the first node in name order (min and max keep the first of equals).
    if strategy == "EFFICIENT":
        return min(fitting, key=lambda r: r.free)
    return max(fitting, key=lambda r: r.free)


def live(node: Node, now: datetime) -> bool:
    """Whether the node's agent runs: it heartbeats and did not say it stopped."""
    fresh = node.heartbeat is not None and now - node.heartbeat <= STALE_AFTER
    return fresh and node.status != "stopped"


def on_host(room: NodeRoom, host: str) -> bool:
    """Whether a node is one of ``host``'s: named so, or on a machine of that name."""
    wanted = host.lower()
    return wanted in ANY_HOST or wanted in (room.name.lower(), (room.hostname or "").lower())


def _pick(rooms: list[NodeRoom], host: str | None, cpus: int, strategy: str) -> NodeRoom | None:
    if host is None:
        return choose(rooms, cpus, strategy)
    mine = [r for r in rooms if on_host(r, host)]
    # A hostname is an order: on that host even when it is full (the most free CPUs).
    return choose(mine, cpus, strategy) or (max(mine, key=lambda r: r.free) if mine else None)


def place(session: Session, strategy: str = "BALANCED", now: datetime | None = None) -> list[str]:
    """Drop placements on lost or drained nodes and place every unplaced processor; says
    what changed."""
    now = now or utcnow()
    changes: list[str] = []
    nodes = list(session.scalars(select(Node).order_by(Node.name)))
    alive = {n.id: n for n in nodes if live(n, now)}
    rooms = {n.id: NodeRoom(n.name, n.hostname or n.name, n.cpus, 0, n.id) for n in alive.values()}
    processors = list(
        session.scalars(
            select(Processor)
            .where(Processor.requested_status != "removed")
            .order_by(Processor.name)
        )
    )
    for processor in processors:
        for deployment in list(processor.deployments):
            if deployment.node_id is None:
                continue  # added by hand: bound below
            node = alive.get(deployment.node_id)
            host = processor.hostname
            lost = node is None or node.state == "drained"
            if node is not None and host is not None and not on_host(rooms[node.id], host):
                lost = True  # the processor's hostname changed since
            if lost:
                where = deployment.node.name if deployment.node is not None else deployment.hostname
                changes.append(f"moved {processor.name} off {where}")
                processor.deployments.remove(deployment)  # delete-orphan removes the row
    session.flush()
    for deployment in session.scalars(select(Deployment)):
        if deployment.node_id in rooms:
            rooms[deployment.node_id].used += deployment.cpus
    open_rooms = [r for r in rooms.values() if alive[r.id].state == "active"]
    floating: list[Processor] = []  # no hostname: spread (below) once the rest is placed
    for processor in processors:
        for deployment in processor.deployments:
            if deployment.node_id is None:  # added by hand: bind it to a node of its host
                room = _pick(open_rooms, deployment.hostname, deployment.cpus, strategy)
                if room is not None:
                    deployment.node_id, deployment.hostname = room.id, room.hostname
                    room.used += deployment.cpus
                    changes.append(f"bound {deployment.name} to {room.name}")
        if processor.hostname is None and all(d.owner == "scheduler" for d in
                                              processor.deployments):  # fmt: skip
            if not processor.deployments:  # whole on one node first, spread only after
                changes += fill(processor, open_rooms, strategy, whole=True)
            floating.append(processor)
            continue
        if processor.deployments:
            for deployment in processor.deployments:  # -c changed: exactly what it asks
                if deployment.owner == "scheduler" and deployment.cpus != processor.concurrency:
                    deployment.cpus = processor.concurrency
            continue
        room = _pick(open_rooms, processor.hostname, processor.concurrency, strategy)
        if room is None:
            processor.status_reason = (
                f"no live node has {processor.concurrency} free CPUs"
                if processor.hostname is None
                else f"no live, active node on host {processor.hostname}"
            )
            continue
        session.add(
            Deployment(
                name=f"{processor.name}@{room.name}", hostname=room.hostname, node_id=room.id,
                cpus=processor.concurrency, processor=processor, owner="scheduler",
            )
        )  # fmt: skip
        room.used += processor.concurrency
        processor.status_reason = None
        changes.append(f"placed {processor.name} on {room.name}")
    for processor in floating:  # what did not fit whole on one node, in shares
        changes += fill(processor, open_rooms, strategy)
    return changes
