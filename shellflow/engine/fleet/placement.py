"""Placing processors that name no host onto nodes, by free CPUs (spec: micro-scheduling).

BALANCED spreads work: a processor goes to the live node with the most free CPUs.
EFFICIENT packs it: to the live node with the fewest free CPUs that still fit it, leaving
whole nodes free for large processors. Neither ever places beyond a node's CPUs. A node
whose agent stopped heartbeating loses its placements, which are made again elsewhere.
The result is Deployment rows, which the agent on each host serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

import shellflow.model.tables  # noqa: F401  (registers every mapper)
from shellflow.model.base import utcnow
from shellflow.model.infra import Deployment, Node
from shellflow.model.network import Processor

STALE_AFTER = timedelta(seconds=15)


@dataclass
class NodeRoom:
    name: str
    hostname: str
    cpus: int
    used: int

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


def _live(node: Node, now: datetime) -> bool:
    return node.heartbeat is not None and now - node.heartbeat <= STALE_AFTER


def place(session: Session, strategy: str = "BALANCED", now: datetime | None = None) -> list[str]:
    """Drop placements on dead nodes and place every unplaced processor; says what changed."""
    now = now or utcnow()
    changes: list[str] = []
    nodes = list(session.scalars(select(Node).order_by(Node.name)))
    live = {n.hostname or n.name: n for n in nodes if _live(n, now)}
    floating = list(
        session.scalars(
            select(Processor)
            .where(Processor.hostname.is_(None), Processor.requested_status != "removed")
            .order_by(Processor.name)
        )
    )
    for processor in floating:
        for deployment in list(processor.deployments):
            if deployment.hostname not in live:
                changes.append(f"moved {processor.name} off {deployment.hostname}")
                processor.deployments.remove(deployment)  # delete-orphan removes the row
    session.flush()
    used: dict[str, int] = {host: 0 for host in live}
    for deployment in session.scalars(select(Deployment)):
        if deployment.hostname in used:
            used[deployment.hostname] += deployment.cpus
    rooms = [NodeRoom(n.name, host, n.cpus, used[host]) for host, n in live.items()]
    for processor in floating:
        if processor.deployments:
            continue
        room = choose(rooms, processor.concurrency, strategy)
        if room is None:
            processor.status_reason = f"no live node has {processor.concurrency} free CPUs"
            continue
        session.add(
            Deployment(
                name=f"{processor.name}@{room.name}", hostname=room.hostname,
                cpus=processor.concurrency, processor=processor, owner="scheduler",
            )
        )  # fmt: skip
        room.used += processor.concurrency
        processor.status_reason = None
        changes.append(f"placed {processor.name} on {room.name}")
    return changes
