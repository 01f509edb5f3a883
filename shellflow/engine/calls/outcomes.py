"""Where one call stands, by its id: its outcome, waiting for it, cancelling it.

``flow task result`` and ``flow task cancel`` (and the dashboard) start from nothing but a
call id, so they read the call's record first and the result backend second; sending and
waiting on a handle live in :mod:`shellflow.engine.calls.sender`.
"""

from __future__ import annotations

from typing import Any

from shellflow.config import Settings
from shellflow.engine.calls.result_meta import FINISHED_STATES, Outcome, decode
from shellflow.engine.calls.sender import app_for, release
from shellflow.errors import ServiceUnavailable, TimedOut
from shellflow.model.listing import reader


def _of_record(call_id: Any, state: Any, result: Any, error: Any) -> Outcome:
    """A call row's outcome: a finished call's result is its stored JSON value."""
    from shellflow.values import read_stored

    value = read_stored(result) if state == "finished" else None
    return Outcome(str(call_id), str(state), value, error)


def recorded(settings: Settings, call_id: str) -> Outcome | None:
    """The call's record in the model database, or None when no worker has recorded it."""
    with reader(settings.db) as conn:
        rows = conn.query("SELECT id, state, result, error FROM call WHERE id = ?", [call_id])
    return _of_record(*rows[0]) if rows else None


RECORDED_PER_QUERY = 500  # ids per query (a stream asks for at most its -j window)


def recorded_ended(settings: Settings, call_ids: list[str]) -> list[Outcome]:
    """The outcomes the records hold for those of ``call_ids`` that have ended.

    A stream reads them after its result backend came back: a worker that could not store
    a result while the backend was away has still recorded its call's end, and without
    this the stream would wait for that result forever.
    """
    found: list[Outcome] = []
    with reader(settings.db) as conn:
        for start in range(0, len(call_ids), RECORDED_PER_QUERY):
            chunk = call_ids[start : start + RECORDED_PER_QUERY]
            marks = ",".join("?" * len(chunk))
            rows = conn.query(
                f"SELECT id, state, result, error FROM call WHERE id IN ({marks})"
                f" AND state IN {FINISHED_STATES!r}", chunk,
            )  # fmt: skip
            found += [_of_record(*row) for row in rows]
    return found


def handle_for(settings: Settings, call_id: str) -> Any:
    """An AsyncResult for a call sent earlier (by this process or any other)."""
    return app_for(settings).AsyncResult(call_id)


def stored(settings: Settings, call_id: str) -> Outcome:
    """The call as the result backend knows it: done, or ``unknown`` (queued or never sent).

    The result backend is written before the call's record is committed (see
    ``shellflow.engine.records.recorder``), so it answers for a call that has just ended.
    """
    from celery import states

    handle = handle_for(settings, call_id)
    try:
        meta = handle.backend.get_task_meta(call_id)
    except Exception as exc:
        raise ServiceUnavailable("result backend", settings.backend, str(exc)) from exc
    ended = decode(call_id, meta)
    if ended is not None:
        return ended
    if meta.get("status") in (states.STARTED, states.RETRY):
        return Outcome(call_id, "running")
    return Outcome(call_id, "unknown")


def outcome(settings: Settings, call_id: str) -> Outcome:
    """The call's record when it is complete, else what the result backend knows."""
    record = recorded(settings, call_id)
    if record is not None and record.done:
        return record
    found = stored(settings, call_id)
    if found.done or record is None:
        return found
    return record


def wait_for(settings: Settings, call_id: str, timeout: float | None = None) -> Outcome:
    """Wait until the call ends (TimedOut after ``timeout`` seconds)."""
    from celery.exceptions import TaskRevokedError
    from celery.exceptions import TimeoutError as CeleryTimeout

    handle = handle_for(settings, call_id)
    try:
        value = handle.get(timeout=timeout, propagate=True, disable_sync_subtasks=False)
    except CeleryTimeout as exc:
        release(handle)
        raise TimedOut(f"call {call_id} did not finish within {timeout:g} s") from exc
    except TaskRevokedError:
        return Outcome(call_id, "revoked", error="cancelled")
    except Exception as exc:
        return Outcome(call_id, "failed", error=str(exc) or type(exc).__name__)
    return Outcome(call_id, "finished", value)


def revoke(settings: Settings, call_ids: list[str], *, terminate: bool = False) -> None:
    """Tell every worker to discard these calls when their messages arrive (one broadcast).

    A call already running is not stopped unless ``terminate``: then the worker running it
    sends SIGTERM to the pool process doing it, acknowledges its message (so it is not run
    again) and records it ``revoked``; the pool starts a fresh process for later calls.
    Workers started later learn of cancelled calls from their records
    (``shellflow.engine.worker.runtime``), so a call queued for a processor that is down stays
    cancelled when the processor comes back.
    """
    if not call_ids:
        return
    try:
        app_for(settings).control.revoke(call_ids, terminate=terminate, signal="SIGTERM")
    except Exception as exc:
        from kombu.exceptions import OperationalError

        if isinstance(exc, (OSError, OperationalError)):
            raise ServiceUnavailable("broker", settings.broker, str(exc)) from exc
        raise


def record_cancelled(settings: Settings, call_ids: list[str], note: str) -> list[str]:
    """Record calls as cancelled before they started; returns those now recorded so.

    A call with no record gets a ``revoked`` row; one recorded ``pending`` (sent with
    ``--async``, not yet taken) becomes ``revoked``, with no start time (so workers that
    start later discard it, see ``shellflow.engine.worker.runtime``). A call whose record says it
    started, or ended, keeps it: the returned list leaves it out. The rows also mark the
    results as revoked in the result backend, so whoever waits for them learns at once
    instead of waiting for a worker.
    """
    from shellflow.model import call_writes
    from shellflow.model.listing import writer

    with writer(settings.db) as conn:
        cancelled = call_writes.record_cancelled(conn, call_ids, note)
    backend = app_for(settings).backend
    for call_id in cancelled:
        backend.mark_as_revoked(call_id, note)
    return cancelled


def cancel(settings: Settings, call_id: str, *, terminate: bool = False) -> Outcome:
    """Cancel a call that has not started: record it, mark its result, tell the workers.

    Returns the call's outcome as it was when this was asked: a call that had already
    started or ended (``Outcome.state`` other than ``queued``) is left alone, except that
    with ``terminate`` a started call not yet ended is stopped (see :func:`revoke`).
    """
    found = recorded(settings, call_id)
    if found is None or found.state == "pending":  # not taken by a worker yet
        found = stored(settings, call_id)
        if found.state == "unknown":
            if record_cancelled(settings, [call_id], "Cancelled before it started"):
                revoke(settings, [call_id])
                return Outcome(call_id, "queued")
            found = recorded(settings, call_id) or found  # a worker took it meanwhile
    if terminate and not found.done and found.state != "unknown":
        revoke(settings, [call_id], terminate=True)
    return found
