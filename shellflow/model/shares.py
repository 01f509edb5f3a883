"""A processor's shares: its CPUs spread over several nodes, and its worker bounds per share.

Spec 1.10: a processor asking for N CPUs occupies exactly N, never more. When no live node
has N free CPUs, the placement (``shellflow.engine.fleet.spread``) gives it several
deployments, its *shares*, on several nodes: :func:`split` says how many CPUs on which
node, so that the shares sum to exactly N and none exceeds its node's free CPUs. Each
share's agent runs one worker with that share's CPUs; its autoscaler
(``shellflow.engine.worker.autoscale``) keeps its part of ``--min-workers`` and
``--max-workers`` (:func:`apportion`), so the processes of all shares together never exceed
``--max-workers``.

Pure functions (no database, no Celery): the placement and the workers both use them, and
the unit tests check their promises over many cases (hypothesis).
"""

from __future__ import annotations

from collections.abc import Sequence


def split(
    free: Sequence[tuple[str, int]], cpus: int, most: int, *, pack: bool = False
) -> list[tuple[str, int]] | None:
    """Shares of ``cpus`` over the nodes of ``free`` (node, free CPUs), in as few nodes as
    possible (at most ``most``): the nodes with the most free CPUs first, each share its
    node's free CPUs, the last share what is left. ``pack`` (EFFICIENT) puts that last
    share on the node with the fewest free CPUs that still hold it, leaving larger nodes
    whole. None when the free CPUs of ``most`` nodes do not add up to ``cpus``.

    The shares sum to ``cpus`` exactly, each is at least 1 and at most its node's free
    CPUs, and no node appears twice. Ties go to the first node in the order given.
    """
    if cpus < 1 or most < 1:
        return None
    rooms = [(name, room) for name, room in free if room > 0]
    order = sorted(range(len(rooms)), key=lambda i: -rooms[i][1])  # stable: ties keep order
    shares: list[tuple[str, int]] = []
    left = cpus
    for position, index in enumerate(order):
        if len(shares) >= most:
            return None
        name, room = rooms[index]
        if room >= left:
            rest = [rooms[i] for i in order[position:] if rooms[i][1] >= left]
            last = min(rest, key=lambda r: r[1]) if pack else rest[0]
            shares.append((last[0], left))
            return shares
        shares.append((name, room))
        left -= room
    return None


def apportion(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` worker processes in parts proportional to ``weights`` (the shares' CPUs),
    each part at least 1 and at most its weight (a pool keeps one process; a share never
    runs more processes than its CPUs), by largest remainder, ties to the first share.

    The parts sum to ``total`` when ``len(weights) <= total <= sum(weights)``; below, each
    share still keeps its one process (the sum is then ``len(weights)``); above, each part
    is its weight.
    """
    if not weights:
        return []
    count, whole = len(weights), sum(weights)
    if total >= whole:
        return list(weights)
    if total <= count:
        return [1] * count
    # One process each first, then the rest in proportion to what each share can still take.
    rest, room = total - count, [w - 1 for w in weights]
    spare = sum(room)
    exact = [rest * r / spare for r in room]
    parts = [int(e) for e in exact]
    by_remainder = sorted(range(count), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in by_remainder[: rest - sum(parts)]:
        parts[i] += 1
    return [1 + p for p in parts]
