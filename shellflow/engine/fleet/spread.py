"""Placing a processor without a hostname as one deployment or as several shares.

Spec 1.10: a processor asking for N CPUs (``-c N``) occupies exactly N across the fleet,
never more. It goes to one live, active node when one has N free CPUs (BALANCED: the most
free; EFFICIENT: the fewest that fit, :func:`shellflow.engine.fleet.placement.choose`).
Otherwise it is *spread*: several deployments (shares) on several nodes, in as few nodes as
can hold it (at most ``--max-workers`` of them, each share keeping at least one worker
process), whose CPUs sum to exactly N (:func:`shellflow.model.shares.split`). Each share
is served by its node's agent like any deployment: a worker with the share's CPUs, consuming
the same queues, autoscaling within its part of the bounds.

The deployment id stays the epoch of each share (``shellflow.engine.fleet.lease``): a share
whose node is lost is deleted and the CPUs it held are placed again as new shares (new ids)
on the other nodes, while the surviving shares keep theirs and their workers run on
undisturbed. When the shares sum to more than N (``flow update processor -c`` lowered it),
they are placed again from scratch: shrinking below what runs must stop workers anyway;
when they sum to less (a share's node lost, ``-c`` raised), shares are added. Until the
missing CPUs fit somewhere, the shares placed keep serving (their agents own the
processor's status then; ``flow ls processor -n NAME --json`` lists the shares' CPUs), and
a processor with no share at all says why in ``status_reason``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.orm import object_session

from shellflow.model.infra import Deployment
from shellflow.model.network import Processor
from shellflow.model.shares import split


class Room(Protocol):
    """A node's room as :mod:`shellflow.engine.fleet.placement` counts it."""

    name: str
    hostname: str
    id: str
    used: int

    @property
    def free(self) -> int: ...


def placed_cpus(processor: Processor) -> int:
    return sum(d.cpus for d in processor.deployments)


def _most_shares(processor: Processor) -> int:
    """Each share runs at least one worker process: never more shares than --max-workers."""
    return max(1, processor.max_workers or processor.concurrency or 1)


def fill(
    processor: Processor, rooms: Sequence[Room], strategy: str, *, whole: bool = False
) -> list[str]:
    """Place what ``processor`` (no hostname) still lacks of its CPUs on ``rooms``; says what
    changed. Counts what it places in the rooms' ``used``. ``whole``: on one node or not at
    all (the placement's first pass: every processor that fits on a node is placed before
    any is spread over what is left, so one large processor does not crowd out many)."""
    wanted = max(1, processor.concurrency or 1)
    have = placed_cpus(processor)
    if have == wanted:
        return []
    changes: list[str] = []
    by_id = {r.id: r for r in rooms}
    if have > wanted:  # -c lowered: place it again, whole
        for deployment in list(processor.deployments):
            if deployment.node_id in by_id:
                by_id[deployment.node_id].used -= deployment.cpus
            processor.deployments.remove(deployment)
        session = object_session(processor)
        if session is not None:  # the rows go before new ones of the same names come
            session.flush()
        changes.append(f"unplaced {processor.name}: its shares held {have} of {wanted} CPUs")
        have = 0
    held = {d.node_id: d for d in processor.deployments}
    missing, limit, pack = wanted - have, _most_shares(processor), strategy == "EFFICIENT"
    # New shares on nodes that hold none first (no running worker restarts), then any, as
    # long as the shares stay within the limit.
    fresh = [(r.id, r.free) for r in rooms if r.id not in held]
    shares = split(fresh, missing, 1 if whole else limit - len(held), pack=pack)
    if shares is None and not whole:
        shares = split([(r.id, r.free) for r in rooms], missing, limit, pack=pack)
        if shares is not None and len(set(held) | {node for node, _ in shares}) > limit:
            shares = None
    if shares is None:
        if not have and not whole:  # nothing runs: say why (shares that run: their agents')
            processor.status_reason = f"no live node has {wanted} free CPUs"
        return changes
    for room_id, cpus in shares:
        room = by_id[room_id]
        room.used += cpus
        if room_id in held:  # a bigger share on the same node (its worker restarts)
            held[room_id].cpus += cpus
            changes.append(f"grew {held[room_id].name} to {held[room_id].cpus} CPUs")
            continue
        processor.deployments.append(
            Deployment(
                name=f"{processor.name}@{room.name}", hostname=room.hostname, node_id=room.id,
                cpus=cpus, owner="scheduler",
            )
        )  # fmt: skip
        part = f" ({cpus} of {wanted} CPUs)" if cpus != wanted else ""
        changes.append(f"placed {processor.name} on {room.name}{part}")
    processor.status_reason = None
    return changes
