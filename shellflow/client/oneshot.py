"""One call from a cold process: ``flow task run`` (send and wait) and ``--async`` (send).

A process that makes one call and exits pays for its imports more than for the call, so
this path builds no Celery app and, on the usual servers, imports neither kombu nor
redis-py: it reads the socket's route through the light database path, publishes the task
message as Celery's ``send_task`` builds it (protocol 2: same headers, body, properties,
queue, exchange, persistence, confirm and publish retries), and reads the result from
Celery's Redis result backend, subscribed before the call is sent. The worker cannot tell
the difference.

- the broker: plain ``amqp://`` is spoken by :mod:`shellflow.engine.transport.amqpwire`; anything
  else (a Redis broker, TLS, URL options) goes through kombu, as before;
- the result backend: plain Redis (TCP or a unix socket) is read by
  :mod:`shellflow.engine.transport.resultwire`; any other goes through Celery
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
import os
import time
import uuid
from typing import TYPE_CHECKING, Any

from shellflow.engine.transport.celery_app import FLOW_HEADER, PARENT_HEADER, PUBLISH_RETRY
from shellflow.errors import ServiceUnavailable, TimedOut
from shellflow.urls import Backend, backend_of, transport_url

if TYPE_CHECKING:
    from shellflow.config import Settings
    from shellflow.model.listing import Reader
    from shellflow.model.routes import SocketRoute

LOOK_EVERY = 1.0  # seconds between reads of the stored result, should a message be lost


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
        results = resultwire.ResultChannel(backend, call_id)
    except resultwire.RedisError as exc:
        raise ServiceUnavailable("result backend", settings.backend, str(exc)) from exc
    try:
        publish(settings, route, call_id, args, kwargs, flow or call_id, parent)
        if on_sent is not None:
            on_sent(call_id)
        return _wait(settings, results, call_id, timeout)
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
    from shellflow.model.listing import reader
    from shellflow.model.routes import socket_route

    with reader(settings.db) as conn:
        return socket_route(conn, socket)


def _ensure_embedded(settings: Settings) -> None:
    urls = (settings.broker, settings.backend)
    if any(backend_of(url) is Backend.REDIS_SOCKET for url in urls):
        from shellflow.engine.transport import embedded_broker as embedded

        embedded.ensure_for_urls(settings.broker, settings.backend)


# -- publishing ----------------------------------------------------------------------------


def message(
    route: SocketRoute, call_id: str, args: list[Any], kwargs: dict[str, Any], flow: str,
    parent: str | None,
) -> tuple[dict[str, Any], tuple[Any, ...]]:  # fmt: skip
    """The headers and body Celery's ``send_task`` gives this call (protocol 2)."""
    import socket as pysocket

    headers: dict[str, Any] = {
        "lang": "py", "task": route.name, "id": call_id, "shadow": None, "eta": None,
        "expires": None, "group": None, "group_index": None, "retries": 0,
        "timelimit": [None, None], "root_id": call_id, "parent_id": None,
        "argsrepr": _shown(args), "kwargsrepr": _shown(kwargs),
        "origin": f"gen{os.getpid()}@{pysocket.gethostname()}", "ignore_result": False,
        "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {}, FLOW_HEADER: flow,
    }  # fmt: skip
    if parent:
        headers[PARENT_HEADER] = parent
    body = (args, kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None})
    return headers, body


REPR_MAX = 1024  # Celery's argsrepr_maxsize: the header shows at most this much of a value


def _shown(value: Any) -> str:
    """The value as the ``argsrepr`` header shows it: as Celery's ``send_task`` writes it.

    A short value's ``repr`` is what Celery's ``saferepr`` gives, and costs no import; a
    long one is cut by ``saferepr`` itself (100 ms of imports, paid only then), since a
    header as long as the argument would exceed the broker's frame size.
    """
    text = repr(value)
    if len(text) <= REPR_MAX:
        return text
    from celery.utils.saferepr import saferepr

    return saferepr(value, REPR_MAX)


def publish(
    settings: Settings, route: SocketRoute, call_id: str, args: list[Any],
    kwargs: dict[str, Any], flow: str, parent: str | None,
) -> None:  # fmt: skip
    """Publish one task message to the socket's queue (persistent, confirmed, retried)."""
    from shellflow.engine.transport import amqpwire

    headers, body = message(route, call_id, args, kwargs, flow, parent)
    broker = transport_url(settings.broker)
    if not amqpwire.handles(broker):
        _publish_kombu(settings, route, call_id, headers, body)
        return
    # As shellflow.engine.transport.routing.kombu_queue declares and publish_via addresses it.
    declare = amqpwire.Declare(
        exchange=route.queue, exchange_type=route.qtype, queue=route.name,
        routing_key=route.name, durable=route.durable,
    )  # fmt: skip
    exchange, routing_key = (
        (route.queue, route.name) if route.qtype == "topic" else ("", route.name)
    )
    props = {
        "content_type": "application/json", "content_encoding": "utf-8",
        "application_headers": headers, "delivery_mode": 2, "priority": 0,
        "correlation_id": call_id, "reply_to": str(uuid.uuid4()),
    }  # fmt: skip
    data = json.dumps(body).encode("utf-8")
    try:
        amqpwire.publish(broker, [declare], exchange, routing_key, data, props, PUBLISH_RETRY)
    except amqpwire.BrokerError as exc:
        raise ServiceUnavailable("broker", settings.broker, str(exc)) from exc


def _publish_kombu(
    settings: Settings, route: SocketRoute, call_id: str, headers: dict[str, Any],
    body: tuple[Any, ...],
) -> None:  # fmt: skip
    from kombu import Connection
    from kombu.exceptions import OperationalError

    from shellflow.engine.transport.celery_app import celery_conf
    from shellflow.engine.transport.routing import kombu_queue

    queue = kombu_queue(route, settings.broker)
    if route.qtype == "topic":
        exchange, routing_key = queue.exchange, route.name
    else:  # the default exchange, by queue name (as Celery sends to a direct queue)
        exchange, routing_key = "", queue.name
    options = celery_conf(settings)["broker_transport_options"]
    try:
        with Connection(transport_url(settings.broker), transport_options=options) as conn:
            conn.Producer(serializer="json").publish(
                body, exchange=exchange, routing_key=routing_key, declare=[queue],
                headers=headers, delivery_mode=2, retry=True, retry_policy=PUBLISH_RETRY,
                correlation_id=call_id, reply_to=str(uuid.uuid4()),
            )  # fmt: skip
    except (OSError, OperationalError) as exc:
        raise ServiceUnavailable("broker", settings.broker, str(exc)) from exc


# -- waiting -------------------------------------------------------------------------------


def _wait(settings: Settings, results: Any, call_id: str, timeout: float | None) -> Any:
    from shellflow.engine.calls.result_meta import decode, value_of
    from shellflow.engine.transport.resultwire import RedisError

    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            left = LOOK_EVERY
            if deadline is not None:
                left = min(left, deadline - time.monotonic())
                if left <= 0:
                    raise TimedOut(f"call {call_id} did not finish within {timeout:g} s")
            data = results.next(left)
            if data is None:
                data = results.stored()
            if data is not None:
                ended = decode(call_id, json.loads(data))
                if ended is not None:
                    return value_of(ended)
    except RedisError as exc:
        raise ServiceUnavailable("result backend", settings.backend, str(exc)) from exc
