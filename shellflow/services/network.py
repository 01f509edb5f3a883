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
