"""Carrying out a forced change of the network: the calls it strands end ``revoked``.

``flow delete|update KIND --force``, ``flow proc remove --force`` and ``flow compose
up|down --force`` commit their change through the store, which refuses a change under
running work unless forced and, when forced, lists the calls and broker queues it strands
(:class:`shellflow.model.busy.Revocation`). :func:`finish` then revokes them through the
engine (``shellflow.engine.calls.stranded``) and says what it did in one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shellflow.config import Settings
    from shellflow.model.busy import Revocation


def check(settings: Settings, revocation: Revocation) -> None:
    """Before a change is committed: refuse it (``Conflict``, exit 4) while messages wait in
    the broker queues of the sockets it strands, unless forced (a stream's calls are
    recorded only once a worker takes them: the queue is where they are).

    A broker that cannot be asked refuses the change, forced or not (``ServiceUnavailable``,
    exit 6, nothing changed): unforced, nobody could tell whether calls wait; forced, their
    messages could not be taken out, and would run after the change once the broker is back.
    """
    if not revocation.queues:
        return
    from shellflow.engine.calls.stranded import waiting
    from shellflow.errors import ServiceUnavailable
    from shellflow.model.busy import refusal

    depths = waiting(settings, list(revocation.queues))
    if depths is None:
        owners = ", ".join(sorted(set(revocation.owners.values())))
        why = f"cannot look for calls waiting for {owners}; nothing changed"
        raise ServiceUnavailable("broker", settings.broker, why)
    if revocation.forced:
        return
    by_owner: dict[str, int] = {}
    for socket, count in depths.items():
        owner = revocation.owners[socket]
        by_owner[owner] = by_owner.get(owner, 0) + count
    for owner, count in by_owner.items():
        if count:
            raise refusal(owner, count)


def finish(settings: Settings, revocation: Revocation) -> str | None:
    """Revoke what a committed forced change stranded; the line to show (None: nothing)."""
    if not revocation:
        return None
    from shellflow.engine.calls.sender import forget_routes
    from shellflow.engine.calls.stranded import revoke_stranded

    forget_routes()  # this process's own routes to the changed sockets
    done = revoke_stranded(settings, revocation.calls, revocation.queues)
    drained = sum(done.drained.values())
    count = len(done.revoked)
    line = f"revoked {count} call" + ("" if count == 1 else "s")
    if drained:
        line += f" ({drained} message" + ("" if drained == 1 else "s") + " taken from "
        line += ", ".join(f"queue {q!r}" for q, n in done.drained.items() if n) + ")"
    reasons = sorted(set(done.revoked.values()))
    if reasons:
        line += ": " + "; ".join(reasons)
    return line
