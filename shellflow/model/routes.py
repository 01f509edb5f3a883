"""Where each socket's calls go, read through the light path (no SQLAlchemy).

Clients read this on every call and workers at start, so it must be cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

from shellflow.errors import NotFound
from shellflow.model.listing import Reader, names


@dataclass(frozen=True)
class SocketRoute:
    """A socket with what a message to it needs: its queue, exchange type and function."""

    name: str
    processor: str
    module: str
    function: str
    queue: str
    qtype: str
    durable: bool
    processor_status: str
    requested_status: str
    socket_id: str
    task_id: str


_SQL = (
    "SELECT s.name, p.name, t.module, t.function, q.name, q.qtype, q.durable, p.status,"
    " p.requested_status, s.id, t.id FROM socket s JOIN processor p ON p.id = s.processor_id"
    " JOIN task t ON t.id = s.task_id JOIN queue q ON q.id = s.queue_id"
)


def _route(row: tuple[object, ...]) -> SocketRoute:
    name, processor, module, function, queue, qtype, durable, status, requested, sid, tid = row
    return SocketRoute(
        str(name), str(processor), str(module), str(function), str(queue), str(qtype),
        bool(durable), str(status), str(requested), str(sid), str(tid),
    )  # fmt: skip


def socket_route(conn: Reader, socket: str) -> SocketRoute:
    rows = conn.query(_SQL + " WHERE s.name = ?", [socket])
    if not rows:
        raise NotFound("socket", socket, names(conn, "socket"))
    return _route(rows[0])


def socket_route_by_id(conn: Reader, socket_id: str) -> SocketRoute | None:
    """The route of the socket with this id (None once it is deleted): a renamed socket's
    calls still reach it (the scheduler's outbox keeps ids, not names)."""
    rows = conn.query(_SQL + " WHERE s.id = ?", [socket_id])
    return _route(rows[0]) if rows else None


def processor_routes(conn: Reader, processor: str) -> list[SocketRoute]:
    rows = conn.query(_SQL + " WHERE p.name = ? ORDER BY s.name", [processor])
    if not rows and not conn.query("SELECT 1 FROM processor WHERE name = ?", [processor]):
        raise NotFound("processor", processor, names(conn, "processor"))
    return [_route(r) for r in rows]
