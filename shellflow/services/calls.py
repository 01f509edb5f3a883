"""Calls: run, send, follow, cancel and retry them, with the rules both front-ends share.

``flow task run|result|cancel|retry`` and the dashboard's re-run, retry and cancel call these
functions,
so which right a call needs, when a cancel is refused (and why), and how a call's outcome
maps to an exit code are decided here once. Sending goes through the client's one-shot
path (``shellflow.client.oneshot``) or the engine's sender, and cancelling through
``shellflow.engine.calls.outcomes``; this module only decides and reports.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shellflow.errors import CallFailed, Conflict, NotFound, TimedOut, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from shellflow.client.stream_options import Options, Summary
    from shellflow.config import Settings
    from shellflow.engine.calls.outcomes import Outcome
    from shellflow.model.access import Principal
    from shellflow.model.retries import Ended


@dataclass(frozen=True)
class Sent:
    """A call published without waiting for it: its id, and why its ``pending`` record was
    not written (None when it was, or when none was asked for)."""

    call_id: str
    unrecorded: str | None = None


@dataclass(frozen=True)
class Cancelled:
    """A cancel that was accepted. ``how`` is ``cancelled`` (it had not started),
    ``already`` (it was cancelled before) or ``stopping`` (it runs, and its worker stops
    it); ``state`` is the call's state when the cancel was asked."""

    call_id: str
    how: str
    state: str

    @property
    def summary(self) -> str:
        """The one sentence both front-ends show."""
        if self.how == "cancelled":
            return f"cancelled call {self.call_id}"
        if self.how == "already":
            return f"call {self.call_id} was already cancelled"
        return f"stopping call {self.call_id} ({self.state}); its record will say 'revoked'"


def run(
    settings: Settings, principal: Principal, socket: str, args: list[Any],
    kwargs: dict[str, Any], *, flow: str | None = None, parent: str | None = None,
    timeout: float | None = None, on_sent: Callable[[str], None] | None = None,
) -> Any:  # fmt: skip
    """Call ``socket`` and return its result (``CallFailed``, exit 1, when it raised;
    ``TimedOut``, exit 7, after ``timeout``). ``on_sent(call_id)`` runs once it is sent."""
    from shellflow.client.oneshot import call_once

    _authorize_run(settings, principal, socket)
    return call_once(settings, socket, args, kwargs, flow=flow, parent=parent,
                     timeout=timeout, on_sent=on_sent)  # fmt: skip


def send(
    settings: Settings, principal: Principal, socket: str, args: list[Any],
    kwargs: dict[str, Any], *, flow: str | None = None, parent: str | None = None,
    record_pending: bool = True,
) -> Sent:  # fmt: skip
    """Send a call to ``socket`` and return at once, without waiting for its result.

    With ``record_pending`` (``flow task run --async``) the call is recorded ``pending`` as
    it is sent, so ``flow task result`` knows it while it waits in its queue. Without it
    (the dashboard's re-run, which shows itself as the plain ``flow task run``) the call
    is recorded as ``flow task run`` records it: once a worker takes it.
    """
    _authorize_run(settings, principal, socket)
    if record_pending:
        from shellflow.client.oneshot import send_async

        call_id, unrecorded = send_async(settings, socket, args, kwargs, flow=flow,
                                         parent=parent)  # fmt: skip
        return Sent(call_id, unrecorded)
    from shellflow.engine.calls.sender import release
    from shellflow.engine.calls.sender import send as publish

    sent = publish(settings, socket, args, kwargs, flow=flow, parent=parent)
    release(sent.handle)  # nobody here waits for its result
    return Sent(sent.call_id)


def stream(settings: Settings, principal: Principal, options: Options) -> Summary:
    """Run a stream of calls of ``options.socket`` (``flow task run --stream``)."""
    from shellflow.client.stream import run_stream

    _authorize_run(settings, principal, options.socket)
    return run_stream(settings, options)


def _check_call_id(call_id: str) -> None:
    """Call ids are UUIDs: anything else is a typing mistake (exit 2), told without asking
    the result backend (which would be exit 6 when it is down, or a search for nothing)."""
    try:
        uuid.UUID(call_id)
    except ValueError:
        raise UsageError(f"{call_id!r} is not a call id") from None


def result(
    settings: Settings, principal: Principal, call_id: str, *, wait: bool = False,
    timeout: float | None = None,
) -> Outcome:  # fmt: skip
    """The finished outcome of call ``call_id`` (its ``result`` is the function's value).

    Raises ``NotFound`` (exit 3) for a call no one knows, ``TimedOut`` (exit 7) for one not
    finished (without ``wait``, or not within ``timeout``), and ``CallFailed`` (exit 1)
    for one that failed (with its error) or was cancelled.
    """
    from shellflow.engine.calls.outcomes import outcome, wait_for
    from shellflow.model.audit import authorize

    authorize(settings.db, principal, "RUN_TASK", f"call {call_id}")
    _check_call_id(call_id)
    found = outcome(settings, call_id)
    if not found.done and wait:
        found = wait_for(settings, call_id, timeout)
    if found.state == "unknown":
        missing = NotFound("call", call_id)
        missing.message = (
            f"no call {call_id} is known (a call not sent with --async is known once a worker"
            " takes it; --wait waits for it)"
        )
        raise missing
    if found.state == "pending":
        raise TimedOut(f"call {call_id} is pending: it waits in its queue for a worker; "
                       "use --wait")  # fmt: skip
    if not found.done:
        raise TimedOut(f"call {call_id} has not finished yet ({found.state}); use --wait")
    if found.state == "revoked":
        raise CallFailed(f"call {call_id} was cancelled")
    if found.state == "dead":
        raise CallFailed(f"call {call_id} is dead: {found.error or 'redelivered too often'};"
                         f" 'flow task retry {call_id}' sends it again")  # fmt: skip
    if found.state != "finished":
        raise CallFailed(found.error or f"call {call_id} failed")
    return found


def cancel(
    settings: Settings, principal: Principal, call_id: str, *, terminate: bool = False
) -> Cancelled:
    """Cancel call ``call_id``; with ``terminate``, also stop it if it is running.

    A call not started yet is recorded ``revoked`` and its workers discard it. Refused
    with ``Conflict`` (exit 4): a call that has already ended, and one that has started
    when ``terminate`` is not given (stopping a running function is asked for, never
    implied). An id that is not a UUID is a ``UsageError`` (exit 2): cancelling it would
    record a call that can never exist.
    """
    from shellflow.engine.calls.outcomes import cancel as engine_cancel
    from shellflow.model.audit import authorize

    authorize(settings.db, principal, "CANCEL_TASK", call_id)
    _check_call_id(call_id)
    found = engine_cancel(settings, call_id, terminate=terminate)
    if found.state == "queued":
        return Cancelled(call_id, "cancelled", found.state)
    if found.state == "revoked":
        return Cancelled(call_id, "already", found.state)
    if found.done:
        raise Conflict(f"call {call_id} has already {found.state}; it cannot be cancelled")
    if terminate and found.state != "unknown":
        return Cancelled(call_id, "stopping", found.state)
    raise Conflict(
        f"call {call_id} has already started ({found.state}); use --terminate to stop it"
    )


@dataclass(frozen=True)
class Retried:
    """A call sent again: ``call_id`` is the new call, ``retry_of`` the one it retries;
    ``unlinked`` says why the new call's record or its link was not written (None: it was)."""

    call_id: str
    retry_of: str
    socket: str
    unlinked: str | None = None


def retry(settings: Settings, principal: Principal, call_id: str) -> Retried:
    """Send call ``call_id`` again, as a new call linked to it (``flow task retry ID``).

    The new call gets the old one's socket, arguments, flow run and parent, is recorded
    ``pending`` as it is sent, and names the old call (its ``taskparent``; the old call gets
    a ``retried`` event naming the new one). ``NotFound`` (exit 3): no call with that id is
    recorded; ``Conflict`` (exit 4): the call has not ended, or has finished (its result
    stands), or its record holds no arguments to send again (cancelled before any worker
    saw it). Needs ``RUN_TASK`` on the socket, as running it does.
    """
    from shellflow.model.audit import authorize
    from shellflow.model.listing import reader
    from shellflow.model.retries import RETRYABLE, call_to_retry

    authorize(settings.db, principal, "RUN_TASK", f"call {call_id}")  # before any look-up
    _check_call_id(call_id)
    with reader(settings.db) as conn:
        old = call_to_retry(conn, call_id)
    if old is None:
        missing = NotFound("call", call_id)
        missing.message = f"no call {call_id} is recorded"
        raise missing
    if old.state not in RETRYABLE:
        why = "its result stands" if old.state == "finished" else "it has not ended"
        raise Conflict(f"call {call_id} is {old.state}: {why}; only a failed, dead or"
                       " cancelled call can be retried")  # fmt: skip
    if old.args is None:
        raise Conflict(f"call {call_id} has no recorded arguments to send again")
    sent = _send_retry(settings, principal, old)
    if old.state == "dead":
        _take_dead_letters(settings, old.socket, {old.call_id})
    return sent


def retry_many(
    settings: Settings, principal: Principal, state: str, socket: str | None = None
) -> list[Retried]:
    """Retry every call in ``state`` (of ``socket``) not retried yet, oldest first
    (``flow task retry --state STATE [--socket NAME]``). Calls whose records hold no
    arguments are left out. ``UsageError`` for a state that cannot be retried."""
    from shellflow.model.listing import reader
    from shellflow.model.retries import RETRYABLE, calls_to_retry

    _authorize_run(settings, principal, socket or f"{state} calls")  # all, without --socket
    if state not in RETRYABLE:
        raise UsageError(f"--state {state}: only {', '.join(RETRYABLE)} calls can be retried")
    with reader(settings.db) as conn:
        found = calls_to_retry(conn, state, socket)
    sent = [_send_retry(settings, principal, old) for old in found if old.args is not None]
    if state == "dead":
        by_socket: dict[str, set[str]] = {}
        for done in sent:
            by_socket.setdefault(done.socket, set()).add(done.retry_of)
        for name, ids in by_socket.items():
            _take_dead_letters(settings, name, ids)
    return sent


def _take_dead_letters(settings: Settings, socket: str, call_ids: set[str]) -> None:
    """A retried dead call's copy leaves ``<socket>.dead`` (it would only grow otherwise);
    a broker that fails now costs only the copy: the retry is sent, so it is logged."""
    from shellflow.engine.calls.sender import app_for
    from shellflow.engine.transport.dead_letters import take_dead_letters

    try:
        take_dead_letters(app_for(settings), socket, call_ids)
    except Exception as exc:
        import logging

        logging.getLogger(__name__).warning(
            "retried, but the dead letters of %s stay in %s.dead: %s", socket, socket, exc
        )


def _send_retry(settings: Settings, principal: Principal, old: Ended) -> Retried:
    from shellflow.model.call_writes import link_retry
    from shellflow.model.listing import writer

    sent = send(settings, principal, old.socket, old.args or [], old.kwargs, flow=old.flow,
                parent=old.parent)  # fmt: skip
    unlinked = sent.unrecorded
    if unlinked is None:
        try:
            with writer(settings.db) as conn:
                link_retry(conn, old.call_id, sent.call_id)
        except Exception as exc:  # the call is on its way: say so rather than fail
            unlinked = " ".join(str(exc).split()) or type(exc).__name__
    return Retried(sent.call_id, old.call_id, old.socket, unlinked)


def _authorize_run(settings: Settings, principal: Principal, socket: str) -> None:
    """Running a socket needs ``RUN_TASK`` on it, however the call is sent (a refusal is
    appended to the audit trail, ``shellflow.model.audit``)."""
    from shellflow.model.audit import authorize

    authorize(settings.db, principal, "RUN_TASK", socket)
