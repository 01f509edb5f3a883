"""One call from a cold process: ``flow task run`` (send and wait) and ``--async`` (send).

A process that makes one call and exits pays for its imports more than for the call, so
this path builds no Celery app and, on the usual servers, imports neither kombu nor
redis-py: it reads the socket's route through the light database path, publishes the task
message as Celery's ``send_task`` builds it (protocol 2: same headers, body, properties,
queue, exchange, persistence, confirm and publish retries), and reads the result from
Celery's Redis result backend, subscribed before the call is sent. The worker cannot tell
the difference.

- the broker: the call goes through the one publisher
  (:mod:`shellflow.engine.transport.publisher`), on its wire transport for plain
  ``amqp://`` and on kombu's for anything else (a Redis broker, TLS, URL options);
- the result backend: plain Redis (TCP or a unix socket) is read by
  :mod:`shellflow.engine.transport.resultwire` and decoded by
  :mod:`shellflow.engine.calls.result_meta`; any other goes through Celery
  (:func:`shellflow.engine.calls.sender.send` and ``wait``).

The route is read from the database on every call (one indexed query): it is not cached
between processes, so a socket moved to another queue is called there at once.

``--async`` also records the call as ``pending`` (:func:`record_pending`), so ``flow task
result ID`` and ``flow ls calls -u`` know it while it waits in its queue; the worker's
record later completes the same row (``shellflow.engine.records.recorder`` upserts by id and keeps
``created``, the time it was sent).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from shellflow.errors import ServiceUnavailable, TimedOut
from shellflow.urls import Backend, backend_of, transport_url

if TYPE_CHECKING:
    from shellflow.config import Settings
    from shellflow.model.listing import Reader
    from shellflow.model.routes import SocketRoute

LOOK_EVERY = 1.0  # seconds between reads of the stored result, should a message be lost
WIRE_GRACE = 2.0  # seconds past --timeout for an exchange with a server begun before it


def call_once(
    settings: Settings,
    socket: str,
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    flow: str | None = None,
    parent: str | None = None,
    timeout: float | None = None,
    on_sent: Any = None,
) -> Any:
    """Send one call and return its result, as ``send`` then ``wait`` would.

    ``on_sent(call_id)`` is called once the call is published.
    """
    from shellflow.engine.transport import resultwire

    # One deadline for all of it: subscribing, publishing (retries included) and waiting.
    # A call not finished by then is TimedOut; the wire gets WIRE_GRACE more, so that an
    # exchange begun in time may end (a server still not done then is unavailable).
    deadline = None if timeout is None else time.monotonic() + timeout
    wire = None if deadline is None else deadline + WIRE_GRACE
    backend = transport_url(settings.backend)
    if not resultwire.handles(backend):
        from shellflow.engine.calls.sender import send, wait

        sent = send(settings, socket, args, kwargs, flow=flow, parent=parent)
        if on_sent is not None:
            on_sent(sent.call_id)
        return wait(sent, timeout)
    route = _route(settings, socket)
    _ensure_embedded(settings)
    call_id = str(uuid.uuid4())
    try:
        results = resultwire.ResultChannel(backend, call_id, wire)
    except resultwire.RedisError as exc:
        raise ServiceUnavailable("result backend", settings.backend, str(exc)) from exc
    try:
        publish(settings, route, call_id, args, kwargs, flow or call_id, parent, wire)
        if on_sent is not None:
            on_sent(call_id)
        as_sent = (route.name, json.loads(json.dumps(args)), json.loads(json.dumps(kwargs)))
        return _wait(settings, results, call_id, timeout, deadline, as_sent)
    finally:
        results.close()


def send_async(
    settings: Settings,
    socket: str,
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    flow: str | None = None,
    parent: str | None = None,
) -> tuple[str, str | None]:
    """Publish one call and record it ``pending``; its id, and why the record was not
    written (None when it was: the call is sent either way)."""
    from shellflow.model.listing import writer
    from shellflow.model.routes import socket_route

    call_id = str(uuid.uuid4())
    with writer(settings.db) as conn:
        route = socket_route(conn, socket)
        _ensure_embedded(settings)
        sent = time.time()
        publish(settings, route, call_id, args, kwargs, flow or call_id, parent)
        try:
            record_pending(conn, route, call_id, args, kwargs, flow or call_id, parent, sent)
        except Exception as exc:  # the call is on its way: say so rather than fail
            return call_id, " ".join(str(exc).split()) or type(exc).__name__
    return call_id, None


def record_pending(
    conn: Reader, route: SocketRoute, call_id: str, args: list[Any], kwargs: dict[str, Any],
    flow: str, parent: str | None, sent: float,
) -> bool:  # fmt: skip
    """Write the ``pending`` row of a call just sent; False if a worker's record came first.

    Written after the publish, so a call that could not be sent leaves no row; the row and
    its rules are ``shellflow.model.call_writes``'s (the one owner of the ``call`` table).
    """
    from datetime import UTC, datetime

    from shellflow.model.call_writes import insert_pending

    return insert_pending(
        conn, call_id=call_id, name=route.name, socket_id=route.socket_id,
        task_id=route.task_id, flow=flow, parent=parent,
        args=json.dumps({"args": args, "kwargs": kwargs}, default=str),
        sent=datetime.fromtimestamp(sent, UTC),
    )  # fmt: skip


def _route(settings: Settings, socket: str) -> SocketRoute:
    from shellflow.model import result_keys
    from shellflow.model.kept import kept_reader
    from shellflow.model.routes import socket_route

    with kept_reader(settings.db) as conn:  # the one who acts was read on it (a login)
        route = socket_route(conn, socket)
        result_keys.remember(settings.db, conn)  # checks the result: no second connection
        return route


def _ensure_embedded(settings: Settings) -> None:
    urls = (settings.broker, settings.backend)
    if any(backend_of(url) is Backend.REDIS_SOCKET for url in urls):
        from shellflow.engine.transport import embedded_broker as embedded

        embedded.ensure_for_urls(settings.broker, settings.backend)


# -- publishing ----------------------------------------------------------------------------


def publish(
    settings: Settings, route: SocketRoute, call_id: str, args: list[Any],
    kwargs: dict[str, Any], flow: str, parent: str | None, deadline: float | None = None,
) -> None:  # fmt: skip
    """Publish one task message to the socket's queue (persistent, confirmed, retried)
    through the one publisher, on the wire transport for plain ``amqp://`` (by
    ``deadline``, a ``time.monotonic()`` time, when given), else kombu's."""
    from shellflow.engine.transport.message import OutgoingCall
    from shellflow.engine.transport.publisher import publish as publish_call
    from shellflow.engine.transport.publisher import transport_for

    call = OutgoingCall.make(route, args, kwargs, call_id=call_id, flow=flow, parent=parent)
    publish_call(transport_for(settings, deadline), call, shown_url=settings.broker)


# -- waiting -------------------------------------------------------------------------------


def _wait(
    settings: Settings, results: Any, call_id: str, timeout: float | None, deadline: float | None,
    sent: tuple[str, Any, Any] | None = None,
) -> Any:  # fmt: skip
    """The call's result, taken only if signed by the deployment and, when ``sent`` (task,
    args, kwargs as JSON values) is given, made by a run of the call as it was sent (a
    message that reused the call's id with other arguments is a worker's run too)."""
    from shellflow.engine.calls.result_meta import decode, value_of
    from shellflow.engine.transport.result_signing import ran_as_sent, trusted
    from shellflow.engine.transport.resultwire import RedisError

    refused: set[bytes] = set()  # forged values seen: each is logged once, then skipped
    try:
        while True:
            left = LOOK_EVERY
            if deadline is not None:
                left = min(left, deadline - time.monotonic())
                if left <= 0:
                    raise TimedOut(f"call {call_id} did not finish within {timeout:g} s")
            data = results.next(left)
            if data is None and (deadline is None or time.monotonic() < deadline):
                data = results.stored()
            if data is not None and data not in refused:
                meta = _metadata(data)
                if not trusted(settings.db, meta, call_id) or not ran_as_sent(meta, sent):
                    refused.add(data)
                    continue
                ended = decode(call_id, meta)
                if ended is not None:
                    return value_of(ended)
    except RedisError as exc:
        raise ServiceUnavailable("result backend", settings.backend, str(exc)) from exc


def _metadata(data: bytes) -> dict[str, Any]:
    """Celery's result metadata from what Redis gave: a JSON object, else RedisError (the
    backend, or whatever answers in its place, gave something else)."""
    from shellflow.engine.transport.resultwire import RedisError

    try:
        meta = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise RedisError(f"malformed result for the call: not JSON ({exc})") from None
    if not isinstance(meta, dict):
        kind = type(meta).__name__
        raise RedisError(f"malformed result for the call: a JSON {kind}, not an object")
    return meta
