"""Sending calls to sockets and waiting for their results.

A process that sends many calls (the Python API, a streaming ``flow task run``, a plug's
worker) must not pay for set-up on each one: the Celery app is built once per (broker,
backend) and kept for the life of the process (its connection and producer pools with it),
and a socket's route is kept for :data:`ROUTE_TTL` seconds, so a renamed or moved socket is
seen again within that time while a burst of calls reads the database once. Both are kept in
the process's runtime object (``shellflow.process_state``): a forked child builds its own
apps (their connections are its parent's) and reads routes again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shellflow import process_state
from shellflow.config import Settings
from shellflow.engine.transport.celery_app import make_app
from shellflow.engine.transport.message import OutgoingCall
from shellflow.engine.transport.publisher import publish
from shellflow.engine.transport.result_signing import expect
from shellflow.errors import CallFailed, ServiceUnavailable, ShellflowError, TimedOut
from shellflow.model.listing import reader
from shellflow.model.routes import SocketRoute, socket_route

if TYPE_CHECKING:
    from celery import Celery

    from shellflow.engine.transport.transports.celery_producer import CeleryTransport

ROUTE_TTL = 2.0  # seconds a socket's route is trusted before it is read again


class _Cache:
    """The sender's per-process state: Celery apps and their transports by (broker, backend,
    database), routes by (db, socket).

    Readers look entries up without the lock (one dict read); every write takes it.
    """

    def __init__(self) -> None:
        self.after_fork()

    def after_fork(self) -> None:
        """Forget the parent's apps (their pools hold its connections) and routes, unclosed."""
        self.lock = threading.Lock()
        self.apps: dict[tuple[str, str, str], Celery] = {}
        self.transports: dict[tuple[str, str, str], CeleryTransport] = {}
        self.routes: dict[tuple[str, str], tuple[float, SocketRoute]] = {}


_cache = process_state.own(__name__, _Cache())


@dataclass(frozen=True)
class Sent:
    call_id: str
    flow: str
    handle: Any  # celery.result.AsyncResult


def app_for(settings: Settings) -> Celery:
    """The process's Celery app for these broker, backend and database URLs (built on first
    use; the database's key signs and checks results: ``result_signing``)."""
    key = (settings.broker, settings.backend, settings.db)
    return process_state.made_once(_cache.apps, _cache.lock, key, lambda: make_app(settings))


def transport_for(settings: Settings) -> CeleryTransport:
    """The process's publisher transport on :func:`app_for`'s app (its producer pool, and
    its result subscription, which :func:`wait` reads)."""
    from shellflow.engine.transport.transports.celery_producer import CeleryTransport

    app = app_for(settings)
    key = (settings.broker, settings.backend, settings.db)
    return process_state.made_once(
        _cache.transports, _cache.lock, key, lambda: CeleryTransport(app)
    )


def route_for(settings: Settings, socket: str) -> SocketRoute:
    """The socket's route, read again once :data:`ROUTE_TTL` has passed.

    A database that does not answer then leaves the route it last gave in use (the calls
    still go to the broker, which is up): a stream rides out a PostgreSQL restart. Only a
    socket never read raises ``ServiceUnavailable``.
    """
    key = (settings.db, socket)
    now = time.monotonic()
    cached = _cache.routes.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        with reader(settings.db) as conn:  # outside the lock: other sockets' sends go on
            route = socket_route(conn, socket)
    except Exception as exc:  # connecting (ServiceUnavailable) or a query cut off (driver)
        if cached is None or (isinstance(exc, ShellflowError)
                              and not isinstance(exc, ServiceUnavailable)):  # fmt: skip
            raise  # never read, or an answer (no such socket any more): not an outage
        route = cached[1]  # the database is away: the route it last gave still stands
    with _cache.lock:
        _cache.routes[key] = (now + ROUTE_TTL, route)
    return route


def forget_routes() -> None:
    """Drop every cached route (after changing the network from this process)."""
    with _cache.lock:
        _cache.routes.clear()


def send(
    settings: Settings,
    socket: str,
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    flow: str | None = None,
    parent: str | Sequence[str] | None = None,
) -> Sent:
    """Publish one call (persistent, confirmed, to the socket's durable queue); return at once.

    ``parent`` may name several calls (the members of a funnel whose results the call
    receives): the last is recorded as its parent, all of them as its sources.
    """
    route = route_for(settings, socket)
    transport = transport_for(settings)
    call = OutgoingCall.make(route, args, kwargs, flow=flow, parent=parent)
    publish(transport, call, shown_url=settings.broker)
    expect(call.call_id, route.name, args, kwargs)  # its result must be made from these
    handle = transport.app.AsyncResult(call.call_id)
    handle.ignored = None  # as send_task leaves it: the task is not registered here
    return Sent(call_id=call.call_id, flow=call.flow, handle=handle)


def release(handle: Any) -> None:
    """Stop listening for a result no one waits for any more.

    Done now, while the process is whole: left to the handle's finaliser it would run at
    interpreter shutdown, where a reconnecting Redis client prints a stack of errors.
    """
    import contextlib

    if handle is None:
        return
    backend = getattr(handle, "backend", None)
    if backend is not None and hasattr(backend, "remove_pending_result"):
        # Best effort: at worst the result backend keeps listening for it until this
        # process ends, which is what would happen without this call.
        with contextlib.suppress(Exception):
            backend.remove_pending_result(handle)
    handle.backend = None


def wait(sent: Sent, timeout: float | None = None) -> Any:
    """The call's result; CallFailed with the remote message when the function raised."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    try:
        return sent.handle.get(timeout=timeout, propagate=True, disable_sync_subtasks=False)
    except CeleryTimeout as exc:
        release(sent.handle)
        raise TimedOut(f"call {sent.call_id} did not finish within {timeout:g} s") from exc
    except Exception as exc:
        raise CallFailed(str(exc) or type(exc).__name__) from exc
