"""The worker's hand-written live messages are byte for byte ``dumps(messages(...))``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shellflow.engine.records.events import Stored, dumps, encoded, messages

WHEN = datetime(2026, 11, 27, 17, 30, 1, 123456, tzinfo=UTC)
EVENTS = [
    Stored("c1/received", "c1", "pyfi.sample.do_this", "f1", "received", WHEN),
    Stored("c1/prerun", "c1", "pyfi.sample.do_this", None, "prerun", WHEN),
    Stored("c1/postrun", "c1", "s", "f1", "postrun", WHEN, {"sum": 3, "text": 'é "q"\n'}),
    Stored("c1/postrun", "c1", "s", "f1", "postrun", WHEN, None),
    Stored("c1/failure", "c1", "s", "f1", "failure", WHEN, "ValueError: naïve\ttab"),
    Stored("e1", "c1", "s", "f1", "retry", WHEN),
    Stored("l1", "c1", "s", "f1", "log", WHEN, "printed \u2603 line"),
    # A time that is not in UTC's own tzinfo (as a database driver may hand one back).
    Stored("e2", "c1", "s", "f1", "revoked", WHEN.astimezone(timezone(timedelta(hours=2)))),
]


@pytest.mark.parametrize("event", EVENTS, ids=[e.state + e.id for e in EVENTS])
def test_encoded_is_what_dumps_makes(event: Stored) -> None:
    fast = encoded("proc1", event)
    expected = [(m["channel"], dumps(m).encode()) for m in messages("proc1", event)]
    assert fast == expected
    for _, payload in fast:
        json.loads(payload)  # and valid JSON


@pytest.mark.parametrize(
    "payload",
    [b"garbage", b"caf\xe9", b"[1, 2]", b'"text"', b"null", b"[" * 100_000 + b"]" * 100_000],
)
def test_a_message_that_is_not_an_event_is_none(payload: bytes) -> None:
    """What ``flow listen`` and the dashboard skip (anyone may publish on the channel)."""
    from shellflow.engine.records.events import decoded

    assert decoded(payload) is None


@pytest.mark.parametrize("event", EVENTS, ids=[e.state + e.id for e in EVENTS])
def test_every_message_a_worker_sends_is_decoded(event: Stored) -> None:
    from shellflow.engine.records.events import decoded

    for _, payload in encoded("proc1", event):
        assert decoded(payload) == json.loads(payload)
