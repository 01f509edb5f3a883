"""The one result decoder: Celery's result metadata to a call's end, on every road.

The metadata is produced here by Celery's own Redis backend (``store_result`` on a fake
client, as ``test_private_apis`` does), so the decoder is checked against what a worker
really stores, in both forms callers meet it: the stored JSON and Celery's rebuilt form.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from celery import Celery, states

from shellflow.engine.calls.result_meta import Outcome, decode, error_text, value_of
from shellflow.errors import CallFailed


class _Client:
    """A Redis client that keeps what Celery's backend writes (no server)."""

    def __init__(self) -> None:
        self.stored: dict[bytes, bytes] = {}

    def set(self, key: bytes, value: bytes, *_: Any, **__: Any) -> None:
        self.stored[key] = value

    def setex(self, key: bytes, _ttl: Any, value: bytes) -> None:
        self.stored[key] = value

    def get(self, key: bytes) -> bytes | None:
        return self.stored.get(key)

    def publish(self, *_: Any) -> None:
        pass

    def pipeline(self) -> Any:
        return self

    def execute(self) -> list[Any]:
        return []

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *_: Any) -> None:
        pass


def _stored(result: Any, state: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metadata Celery stores for this end: as JSON, and as Celery decodes it."""
    app = Celery("sfmeta", broker="memory://", backend="redis://127.0.0.1:1/0")
    backend = app.backend
    client = _Client()
    backend.__dict__["client"] = client
    backend.store_result("c-1", result, state)
    raw = next(iter(client.stored.values()))
    return json.loads(raw), backend.decode_result(raw)


def test_success_is_the_value_on_both_forms() -> None:
    for meta in _stored({"a": [1, "two"]}, states.SUCCESS):
        ended = decode("c-1", meta)
        assert ended == Outcome("c-1", "finished", {"a": [1, "two"]})
        assert value_of(ended) == {"a": [1, "two"]}


def test_a_failure_reads_the_same_stored_or_rebuilt() -> None:
    raw, rebuilt = _stored(RuntimeError("ValueError: boom"), states.FAILURE)
    assert isinstance(rebuilt["result"], BaseException)
    for meta in (raw, rebuilt):
        ended = decode("c-1", meta)
        assert ended == Outcome("c-1", "failed", error="ValueError: boom")
        with pytest.raises(CallFailed, match=r"^ValueError: boom$"):
            value_of(ended)


def test_a_cancelled_call() -> None:
    for meta in _stored(None, states.REVOKED):
        ended = decode("c-1", meta)
        assert ended == Outcome("c-1", "revoked", error="cancelled")
        with pytest.raises(CallFailed, match="call c-1 was cancelled"):
            value_of(ended)


def test_a_call_revoked_with_a_reason_says_it() -> None:
    from celery.exceptions import TaskRevokedError

    for meta in _stored(TaskRevokedError("socket s1 deleted"), states.REVOKED):
        ended = decode("c-1", meta)
        assert ended == Outcome("c-1", "revoked", error="cancelled: socket s1 deleted")


@pytest.mark.parametrize("status", ["PENDING", "STARTED", "RETRY", None])
def test_not_ended_is_none(status: str | None) -> None:
    assert decode("c-1", {"status": status, "result": None}) is None


def test_error_text_forms() -> None:
    assert error_text({"exc_type": "E", "exc_message": ["a", 2]}) == "a 2"
    assert error_text({"exc_type": "E", "exc_message": []}) == "E"
    assert error_text({"exc_type": "E", "exc_message": "said"}) == "said"
    assert error_text(ValueError()) == "ValueError"
    assert error_text("plain") == "plain"
    assert error_text(None, "FAILURE") == "failure"
