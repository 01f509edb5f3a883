"""Reading call records as users see them: a call's events come from the history reader,
which merges stored event rows with the lifecycle events the call row tells."""

from __future__ import annotations

from tests.engine.conftest import Deployment


def events_of(d: Deployment, call_id: str) -> list[str]:
    """The names of a call's events, in order (``flow ls call --id``'s list)."""
    from shellflow.model.history import get_call
    from shellflow.model.listing import reader

    with reader(d.env["SHELLFLOW_DB"]) as conn:
        return [event["name"] for event in get_call(conn, call_id)["events"]]


def count_events(d: Deployment, socket: str, name: str) -> int:
    """How many events called ``name`` the calls of ``socket`` have, in all."""
    calls = [row[0] for row in d.query("SELECT id FROM call WHERE name = ?", (socket,))]
    return sum(events_of(d, call_id).count(name) for call_id in calls)
