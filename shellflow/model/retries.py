"""The calls ``flow task retry`` may send again, read from their records.

A call is retryable once it has ended without a result: ``failed`` (its function raised),
``dead`` (redelivered too often, set aside in its dead-letter queue) or ``revoked``
(cancelled). A finished call is not: its result stands, and ``flow task run`` sends the same
input again if that is what is meant. Sending a retry and linking it to the call it retries
is ``shellflow.services.calls.retry``'s; the link is written by
:func:`shellflow.model.call_writes.link_retry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shellflow.values import read_stored

if TYPE_CHECKING:
    from shellflow.model.listing import Reader

RETRYABLE = ("failed", "dead", "revoked")


@dataclass(frozen=True)
class Ended:
    """What a retry of a call needs from its record."""

    call_id: str
    socket: str
    state: str
    args: list[Any] | None  # None: the record holds no arguments to send again
    kwargs: dict[str, Any]
    flow: str | None
    parent: str | None


_COLUMNS = "id, name, state, args, tracking, parent"


def _ended(row: tuple[Any, ...]) -> Ended:
    call_id, name, state, stored, flow, parent = row
    args: list[Any] | None = None
    kwargs: dict[str, Any] = {}
    value = read_stored(stored)  # text no parser takes is no arguments
    if isinstance(value, dict) and isinstance(value.get("args", []), list):
        args, kwargs = list(value.get("args") or []), dict(value.get("kwargs") or {})
    flow_id = None if flow is None else str(flow)
    parent_id = None if parent is None else str(parent)
    return Ended(str(call_id), str(name), str(state), args, kwargs, flow_id, parent_id)


def call_to_retry(conn: Reader, call_id: str) -> Ended | None:
    """The record of call ``call_id``, or None when there is none."""
    rows = conn.query(f"SELECT {_COLUMNS} FROM call WHERE id = ?", [call_id])
    return _ended(rows[0]) if rows else None


def calls_to_retry(conn: Reader, state: str, socket: str | None) -> list[Ended]:
    """The calls in ``state`` (of ``socket``, if given), oldest first, that no retry has
    sent again yet: retrying the same ones twice by state would run them twice."""
    sql = (
        f"SELECT {_COLUMNS} FROM call c WHERE state = ?"
        " AND NOT EXISTS (SELECT 1 FROM call r WHERE r.taskparent = c.id)"
    )
    params: list[Any] = [state]
    if socket is not None:
        sql += " AND name = ?"
        params.append(socket)
    return [_ended(row) for row in conn.query(sql + " ORDER BY created, id", params)]
