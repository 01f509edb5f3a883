"""Celery's result metadata, read one way by every caller that learns how a call ended.

A call's end reaches a caller as Celery's result metadata (``status``, ``result``) by four
roads: the one-shot call's plain Redis socket (``shellflow.client.oneshot``), a stream's
burst subscription (``shellflow.engine.calls.bursts``) or Celery's result consumer
(``shellflow.client.stream_results``), and the result backend read by call id
(``shellflow.engine.calls.outcomes``). :func:`decode` is the one reading of that metadata
for all of them, so a failure or a cancellation says the same on every road.

The ``result`` of a failure comes in one of two forms, depending on the road: the JSON
Celery stored (``{"exc_type": ..., "exc_message": [...]}``, read without Celery), or the
exception Celery rebuilt from it (``backend.get_task_meta``, ``decode_result``, an
``AsyncResult``). :func:`error_text` reads both. This module imports nothing heavy: the
cold one-shot call uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shellflow.errors import CallFailed

FINISHED_STATES = ("finished", "failed", "revoked", "dead")
ENDED_STATUSES = ("SUCCESS", "FAILURE", "REVOKED")  # Celery's READY_STATES


@dataclass(frozen=True)
class Outcome:
    """What is known of a call: its state (a call record's), and its result or error."""

    call_id: str
    state: str  # finished | failed | revoked | running | received | retry | pending | queued
    # | unknown (``pending``: recorded as sent, not taken yet; ``queued``: as ``cancel``
    # found a call it could cancel)
    result: Any = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.state in FINISHED_STATES


def decode(call_id: str, meta: Mapping[str, Any]) -> Outcome | None:
    """The call's end as the metadata tells it; None while it has not ended (pending,
    started, retrying): those statuses mean different things to different callers."""
    status = meta.get("status")
    if status == "SUCCESS":
        return Outcome(call_id, "finished", meta.get("result"))
    if status == "REVOKED":  # with the reason it was revoked for, when one was given
        reason = error_text(meta.get("result"), status) if meta.get("result") else ""
        plain = reason in ("", "revoked", "TaskRevokedError")
        return Outcome(call_id, "revoked", error="cancelled" if plain else f"cancelled: {reason}")
    if status == "FAILURE":
        return Outcome(call_id, "failed", error=error_text(meta.get("result"), status))
    return None


def error_text(value: Any, status: str = "FAILURE") -> str:
    """The remote error's message, as a person reads it, from either form of ``result``.

    Celery stores an exception's arguments as a list: shellflow's workers raise with one
    message, so the words are that message (several are joined with spaces).
    """
    if isinstance(value, BaseException):
        return str(value) or type(value).__name__
    if isinstance(value, dict) and "exc_type" in value:
        words = value.get("exc_message")
        if isinstance(words, list):
            text = " ".join(str(word) for word in words)
        else:
            text = "" if words is None else str(words)
        return text or str(value["exc_type"])
    return str(value) if value is not None else status.lower()


def value_of(outcome: Outcome) -> Any:
    """The call's result, or :class:`CallFailed` with the remote error (or the cancel)."""
    if outcome.state == "finished":
        return outcome.result
    if outcome.state == "revoked":
        raise CallFailed(f"call {outcome.call_id} was cancelled")
    raise CallFailed(outcome.error or outcome.state)
