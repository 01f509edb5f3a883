"""The scheduler's outbox: a claimed due time's call is recorded before it is sent, and sent
until the broker takes it.

Why: a scheduler that claimed a due time and then failed to publish (the broker away) used
to lose that firing. Now the claim and the call's ``pending`` row (with a ``scheduled``
event) commit in one transaction (:func:`record`, inside the scheduler's claim), and the
call is published after the commit (:func:`deliver`). The broker's confirm (a publisher
confirm on AMQP, a successful LPUSH on Redis: every transport's ``send`` returns only then)
writes a ``sent`` event; a failed send writes an ``unsent`` event and leaves the call
``pending``. The scheduler holding the placement lease sends such calls again on each tick
(:func:`resend`), oldest first, until the broker takes them; it also sends calls claimed by
a scheduler that stopped before it could say (no ``sent`` nor ``unsent`` after
:data:`ORPHANED_AFTER` seconds). One scheduler resends, so two never publish a call at
once; a call the worker has taken (``running`` or ended) or a user cancelled is never sent
again.

What remains at-least-once (docs/engine.md): a broker that took a message but whose
confirm was lost (the connection dropped between the two) gets the call a second time. The
call keeps its id, so its record is one row either way; the function may run twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from shellflow.config import Settings
from shellflow.engine.transport.message import OutgoingCall
from shellflow.engine.transport.publisher import Transport, publish
from shellflow.model import call_writes
from shellflow.model.dialects import sql_time
from shellflow.model.listing import reader, writer
from shellflow.model.routes import socket_route_by_id

if TYPE_CHECKING:
    from sqlalchemy import Connection

Outcome = Literal["sent", "failed", "revoked"]
# Seconds after which a claimed call that nobody sent or failed is sent by the lease holder:
# longer than any one send may take (the AMQP wire gives up after PUBLISH_TIMEOUT, 60 s;
# kombu's retries with their connect timeouts, under 50 s), so a send still under way is
# never doubled by this, only one whose scheduler stopped between its commit and its send.
ORPHANED_AFTER = 120.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    """A scheduled call recorded ``pending``, to be sent."""

    call_id: str
    socket_id: str | None  # None once its socket is deleted
    socket: str


class _InTransaction:
    """The scheduler's SQLAlchemy claim transaction as a :class:`call_writes.Writing`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    def execute(self, sql: str, params: Any = ()) -> int:
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        return int(self.conn.exec_driver_sql(sql, tuple(params)).rowcount)


def record(
    conn: Connection, socket_id: str, socket: str, task_id: str | None, due: float
) -> Claimed | None:
    """Record the call of ``socket``'s due time ``due`` in the claim's transaction; None if
    that due time's call exists already (its id is a function of socket and due time)."""
    call_id = call_writes.scheduled_call_id(socket_id, due)
    recorded = call_writes.insert_scheduled(
        _InTransaction(conn), call_id=call_id, name=socket, socket_id=socket_id,
        task_id=task_id, due=datetime.fromtimestamp(due, UTC), now=datetime.now(UTC),
    )  # fmt: skip
    return Claimed(call_id, socket_id, socket) if recorded else None


def deliver(
    settings: Settings, transport: Transport, call: Claimed, again: bool = False
) -> Outcome:
    """Send one recorded call: ``sent`` once the broker took it (its ``sent`` event written).

    A failure is logged and, on a first send, written as the call's ``unsent`` event; the
    call stays ``pending`` for :func:`resend`. A call whose socket is gone is revoked with
    the reason rather than left pending.
    """
    with writer(settings.db) as conn:  # autocommit: no lock held while publishing
        route = socket_route_by_id(conn, call.socket_id) if call.socket_id else None
        if route is None:
            call_writes.record_cancelled(
                conn, [call.call_id], f"its socket {call.socket} was deleted before the "
                "broker took the scheduled call",
            )  # fmt: skip
            log.warning("scheduled call %s of %s revoked: its socket is gone", call.call_id,
                        call.socket)  # fmt: skip
            return "revoked"
        try:
            publish(transport, OutgoingCall.make(route, [], {}, call_id=call.call_id))
        except Exception as exc:  # the broker is away: the call waits, pending, for resend
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            log.warning("scheduled call %s of %s not sent yet: %s", call.call_id, route.name,
                        reason)  # fmt: skip
            if not again:
                call_writes.mark_unsent(conn, call.call_id, f"not sent: {reason}")
            return "failed"
        note = "sent again once the broker took it" if again else "taken by the broker"
        call_writes.mark_sent(conn, call.call_id, note)
    return "sent"


_UNSENT = (
    "SELECT c.id, c.socket_id, c.name FROM call c"
    " JOIN event s ON s.call_id = c.id AND s.name = 'scheduled'"
    " WHERE c.state = 'pending' AND c.started IS NULL"
    " AND NOT EXISTS (SELECT 1 FROM event e WHERE e.call_id = c.id AND e.name = 'sent')"
    " AND (s.created < ? OR EXISTS"
    " (SELECT 1 FROM event u WHERE u.call_id = c.id AND u.name = 'unsent'))"
    " ORDER BY c.created, c.id"
)


def unsent(settings: Settings, now: datetime | None = None) -> list[Claimed]:
    """Scheduled calls the broker has not taken: a send failed, or no one said for
    :data:`ORPHANED_AFTER` seconds; still ``pending`` (not taken, not cancelled)."""
    now = now or datetime.now(UTC)
    with reader(settings.db) as conn:
        cutoff = sql_time(conn.dialect, now - timedelta(seconds=ORPHANED_AFTER))
        rows = conn.query(_UNSENT, [cutoff])
    return [Claimed(str(i), None if s is None else str(s), str(n)) for i, s, n in rows]


def resend(settings: Settings, transport: Transport, now: datetime | None = None) -> list[str]:
    """Send again, oldest first, the scheduled calls the broker has not taken; the ids it
    took. Stops at the first failure: the broker is away, the others would fail too."""
    taken: list[str] = []
    for call in unsent(settings, now):
        outcome = deliver(settings, transport, call, again=True)
        if outcome == "failed":
            break
        if outcome == "sent":
            taken.append(call.call_id)
    return taken
