"""``flow task retry``'s rules, on both databases: which calls may be sent again, which are
found by state, and how a retry is linked to the call it retries. Sending itself needs a
broker and is covered by tests/engine/test_dead_letters.py."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from shellflow.config import Settings, load_settings
from shellflow.errors import Conflict, ExitCode, NotFound, PermissionDenied, UsageError
from shellflow.model.access import Principal
from shellflow.services import calls

OWNER = Principal("owner", local_owner=True)
GUEST = Principal("guest")  # holds no right


@pytest.fixture
def settings(initialised_db: str) -> Settings:
    return load_settings({"db": initialised_db})


def add_call(settings: Settings, state: str, *, socket: str = "s1", args: Any = None,
             created: str = "2026-01-01 00:00:01", retry_of: str | None = None) -> str:  # fmt: skip
    """A call row as a worker leaves it; ``args`` None: as a cancel of an unseen call."""
    from shellflow.model.listing import writer

    call_id = str(uuid.uuid4())
    stored = None if args is None else json.dumps({"args": args, "kwargs": {"k": 1}})
    with writer(settings.db) as conn:
        conn.execute(
            "INSERT INTO call (id, name, state, celeryid, tracking, args, created, lastupdated,"
            " taskparent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [call_id, socket, state, call_id, call_id, stored, created, created, retry_of],
        )  # fmt: skip
    return call_id


def test_a_call_id_that_is_not_a_uuid_is_a_usage_error(settings: Settings) -> None:
    with pytest.raises(UsageError, match="not a call id"):
        calls.retry(settings, OWNER, "nope")


def test_an_unknown_call_is_not_found(settings: Settings) -> None:
    with pytest.raises(NotFound) as caught:
        calls.retry(settings, OWNER, str(uuid.uuid4()))
    assert caught.value.exit_code == ExitCode.NOT_FOUND


@pytest.mark.parametrize("state", ["finished", "running", "pending", "retry", "received"])
def test_a_call_that_finished_or_has_not_ended_is_refused(settings: Settings, state: str) -> None:
    call_id = add_call(settings, state, args=[1])
    with pytest.raises(Conflict, match=f"is {state}") as caught:
        calls.retry(settings, OWNER, call_id)
    assert caught.value.exit_code == ExitCode.CONFLICT


def test_a_call_with_no_recorded_arguments_is_refused(settings: Settings) -> None:
    call_id = add_call(settings, "revoked")  # cancelled before any worker saw it
    with pytest.raises(Conflict, match="no recorded arguments"):
        calls.retry(settings, OWNER, call_id)


def test_retrying_needs_the_right_to_run_the_socket(settings: Settings) -> None:
    call_id = add_call(settings, "dead", args=["x"])
    with pytest.raises(PermissionDenied, match="lacks the RUN_TASK right"):
        calls.retry(settings, GUEST, call_id)
    with pytest.raises(PermissionDenied):
        calls.retry_many(settings, GUEST, "dead", "s1")


def test_only_ended_states_can_be_retried_by_state(settings: Settings) -> None:
    with pytest.raises(UsageError, match="only failed, dead, revoked"):
        calls.retry_many(settings, OWNER, "finished", "s1")


def test_calls_by_state_are_those_of_the_socket_not_retried_yet_oldest_first(
    settings: Settings,
) -> None:
    from shellflow.model.listing import reader
    from shellflow.model.retries import calls_to_retry

    later = add_call(settings, "dead", args=["b"], created="2026-01-01 00:00:03")
    first = add_call(settings, "dead", args=["a"], created="2026-01-01 00:00:02")
    retried = add_call(settings, "dead", args=["c"])
    add_call(settings, "failed", retry_of=retried, args=["c"])  # its retry, failed again
    add_call(settings, "dead", socket="s2", args=["d"])
    add_call(settings, "failed", args=["e"])
    with reader(settings.db) as conn:
        found = calls_to_retry(conn, "dead", "s1")
        everywhere = calls_to_retry(conn, "dead", None)
    assert [(c.call_id, c.args, c.kwargs) for c in found] == [
        (first, ["a"], {"k": 1}), (later, ["b"], {"k": 1}),
    ]  # fmt: skip
    assert len(everywhere) == 3 and {c.socket for c in everywhere} == {"s1", "s2"}


def test_a_retry_is_linked_both_ways(settings: Settings) -> None:
    from shellflow.model.call_writes import link_retry
    from shellflow.model.history import get_call
    from shellflow.model.listing import reader, writer

    old = add_call(settings, "dead", args=["x"])
    new = add_call(settings, "pending", args=["x"])
    with writer(settings.db) as conn:
        link_retry(conn, old, new)
    with reader(settings.db) as conn:
        shown_new, shown_old = get_call(conn, new), get_call(conn, old)
    assert shown_new["retry_of"] == old and "retry_of" not in shown_old
    retried = [e["note"] for e in shown_old["events"] if e["name"] == "retried"]
    assert retried == [f"Retried as call {new}"]
