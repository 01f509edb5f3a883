"""A call's lifecycle events, read from its call row instead of stored one row each.

Every call that runs has the same four-step life: ``received`` and ``prerun`` when a worker
takes it, then ``postrun`` or ``failure`` when it ends (``dead`` for a call set aside after
too many redeliveries). The call row already holds each of those moments (``started``,
``finished``, ``state`` and ``error``), so the worker writes no event row for them: an
ordinary call costs the database one row instead of four, which is most of what its record
costs (``shellflow.engine.records.recorder``). Everything that is not the same for every call
(``retry``, ``redelivered``, ``revoked``, ``plug``, ``deadletter``, ``retried``) is stored
as an ``event`` row, as are the lifecycle events of rows written before this scheme (the
readers then take the stored one and derive nothing for that name).

Readers (``flow ls call``, ``flow listen --since``, the dashboard) merge both through
:func:`lifecycle` and :func:`merged`; the worker publishes the live messages of these events
under the same ids (:func:`event_id`), so a replayed event and its live message are one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

RECEIVED, PRERUN, POSTRUN, FAILURE = "received", "prerun", "postrun", "failure"
DEAD = "dead"  # the end of a call set aside in its dead-letter queue, in place of failure
LIFECYCLE = (RECEIVED, PRERUN, POSTRUN, FAILURE, DEAD)
ENDS_WITH_ERROR = (FAILURE, DEAD)  # the ends whose live message carries the call's error
ORDER = {name: rank for rank, name in enumerate(LIFECYCLE)}  # ties at one instant


class Event(NamedTuple):
    id: str
    name: str
    note: str
    created: datetime


def event_id(call_id: str, name: str) -> str:
    """The id of a call's lifecycle event, the same wherever it is computed: its call and
    its step (``CALL/prerun``), which no stored event's id can be."""
    return f"{call_id}/{name}"


def note(name: str, socket: str, error: str | None = None) -> str:
    """The event's text, as the original system wrote it."""
    if name == RECEIVED:
        return f"Received call of {socket}"
    if name == PRERUN:
        return f"Prerun for {socket}"
    if name == POSTRUN:
        return f"Postrun for {socket}"
    if name == DEAD:
        return f"Dead letter of {socket}: {error}"[:2000]
    return f"Failure of {socket}: {error}"[:2000]


def lifecycle(
    call_id: str,
    socket: str,
    state: str | None,
    started: datetime | None,
    finished: datetime | None,
    error: str | None,
    stored: Iterable[str] = (),
) -> list[Event]:
    """The lifecycle events a call row tells, minus the names in ``stored``.

    A call that never started (queued, cancelled before it ran, undeliverable) has none;
    one that started has ``received`` and ``prerun`` at its start, and ``postrun`` or
    ``failure`` at its end once it has finished or failed.
    """
    skip = set(stored)
    out: list[Event] = []
    if started is None:
        return out
    steps: list[tuple[str, datetime]] = [(RECEIVED, started), (PRERUN, started)]
    if finished is not None and state == "finished":
        steps.append((POSTRUN, finished))
    elif finished is not None and state == "failed":
        steps.append((FAILURE, finished))
    elif finished is not None and state == "dead":
        steps.append((DEAD, finished))
    for name, when in steps:
        if name not in skip:
            out.append(Event(event_id(call_id, name), name, note(name, socket, error), when))
    return out


def merged(events: Iterable[Event]) -> list[Event]:
    """Events (stored and derived) in the order they happened; one instant keeps the
    lifecycle's order (received before prerun)."""
    return sorted(events, key=lambda e: (e.created, ORDER.get(e.name, len(ORDER))))
