"""Fast paths for sending calls: many calls through one result subscription (a stream), and
one call from a cold process without building a Celery app (a single ``flow task run``).

Both speak the same message protocol as :func:`shellflow.engine.client.send`; they exist
because Celery's own client pays per call (a subscription each) or per process (building
an app) what a shell command cannot afford.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from shellflow.config import Settings
from shellflow.engine import embedded
from shellflow.engine.app import FLOW_HEADER, PARENT_HEADER
from shellflow.engine.client import app_for, route_for, send, wait
from shellflow.engine.outcomes import Outcome, error_text
from shellflow.engine.routing import publish_via
from shellflow.errors import CallFailed, ServiceUnavailable, TimedOut
from shellflow.model.listing import reader
from shellflow.model.routes import SocketRoute


def socket_concurrency(settings: Settings, socket: str) -> int:
    """How many calls of ``socket`` can run at once: the CPUs of its processor's workers.

    The agents' worker rows say what runs; without any (a worker started by hand) the
    processor's own concurrency is the answer.
    """
    route, _ = route_for(settings, socket)
    with reader(settings.db) as conn:
        rows = conn.query(
            "SELECT p.concurrency, (SELECT sum(w.concurrency) FROM worker w"
            " WHERE w.processor_id = p.id) FROM processor p WHERE p.name = ?",
            [route.processor],
        )
    if not rows:
        return 1
    declared, running = rows[0]
    return max(1, int(running or declared or 1))


class Burst:
    """Many calls of one socket from one process, collected by one subscription.

    Celery's own path subscribes to each call's result channel as it is sent and
    unsubscribes when it is read: two commands and three messages per call on the result
    Redis, and a promise to fulfil. A burst gives its calls ids that share a random prefix
    (still UUID-shaped: ``xxxxxxxx-xxxx-4xxx-yxxx-`` and a 12-digit counter), subscribes once
    to the pattern of their result channels before sending anything, and publishes each call
    as Celery's ``send_task`` does without the per-call subscription. Results are decoded
    straight from the pub/sub messages; :meth:`look` reads the stored results of given calls
    (one MGET) for anything a dropped connection may have hidden.

    ``native`` is False when the result backend is not Redis: callers then use :func:`send`.
    """

    def __init__(self, settings: Settings, socket: str) -> None:
        import itertools

        self.settings = settings
        self.socket = socket
        self.app = app_for(settings)
        self.route, self.queue = route_for(settings, socket)
        self.prefix = str(uuid.uuid4())[:24]
        self._count = itertools.count(1)
        backend = self.app.backend
        self.backend = backend
        self.native = hasattr(backend, "client") and hasattr(backend, "get_key_for_task") and (
            type(backend).__name__ in ("RedisBackend", "SentinelBackend")
        )  # fmt: skip
        self.pubsub: Any = None
        via = publish_via(self.route, self.queue)  # as send() publishes
        # As send_task routes them (once: the same for every call of the burst).
        options = {"queue": self.queue, "declare": [self.queue], **via}
        self._options = self.app.amqp.router.route(options, self.route.name, (), {}, None)

    def start(self) -> None:
        """Subscribe to the burst's result channels and wait until the server confirms."""
        if not self.native:
            return
        try:
            pubsub = self.backend.client.pubsub()
            pubsub.psubscribe(self.backend.get_key_for_task(self.prefix) + b"*")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                message = pubsub.get_message(timeout=1.0)
                if message and message["type"] == "psubscribe":
                    break
            else:
                raise OSError("no answer to PSUBSCRIBE")
        except Exception as exc:
            raise ServiceUnavailable("result backend", self.settings.backend, str(exc)) from exc
        self.pubsub = pubsub

    def send(
        self, args: list[Any], kwargs: dict[str, Any], *, flow: str | None, parent: str | None
    ) -> str:
        """Publish one call (persistent, confirmed, as :func:`send` does); its id."""
        call_id = f"{self.prefix}{next(self._count):012x}"
        if not self.native:
            return send(self.settings, self.socket, args, kwargs, flow=flow, parent=parent).call_id
        headers = {FLOW_HEADER: flow or call_id}
        if parent:
            headers[PARENT_HEADER] = parent
        app, name = self.app, self.route.name
        options = {**self._options, "headers": headers}
        try:
            message = app.amqp.create_task_message(
                call_id, name, args, kwargs, reply_to=app.thread_oid,
                create_sent_event=app.conf.task_send_sent_event, **options,
            )  # fmt: skip
            with (
                app.producer_or_acquire() as producer,
                producer.connection._reraise_as_library_errors(),
            ):
                app.amqp.send_task_message(producer, name, message, **options)
        except Exception as exc:
            from kombu.exceptions import OperationalError

            if isinstance(exc, (OSError, OperationalError)):
                raise ServiceUnavailable("broker", self.settings.broker, str(exc)) from exc
            raise
        return call_id

    def results(self, timeout: float) -> list[Outcome]:
        """The outcomes that arrived, waiting up to ``timeout`` seconds for the first."""
        found: list[Outcome] = []
        wait = timeout
        while True:
            try:
                message = self.pubsub.get_message(timeout=wait)
            except Exception as exc:
                raise ServiceUnavailable("result backend", self.settings.backend, str(exc)) from exc
            if message is None:
                return found
            wait = 0.0
            if message["type"] == "pmessage":
                outcome = self._outcome(message["data"])
                if outcome is not None:
                    found.append(outcome)

    def look(self, call_ids: list[str]) -> list[Outcome]:
        """The stored outcomes of these calls, for those that have ended (one MGET)."""
        if not call_ids:
            return []
        keys = [self.backend.get_key_for_task(c) for c in call_ids]
        try:
            values = self.backend.client.mget(keys)
        except Exception as exc:
            raise ServiceUnavailable("result backend", self.settings.backend, str(exc)) from exc
        return [o for o in (self._outcome(v) for v in values if v) if o is not None]

    def _outcome(self, data: Any) -> Outcome | None:
        from celery import states

        meta = self.backend.decode_result(data)
        status, call_id = meta.get("status"), meta.get("task_id")
        if status == states.SUCCESS:
            return Outcome(call_id, "finished", meta.get("result"))
        if status == states.REVOKED:
            return Outcome(call_id, "revoked", error="cancelled")
        if status in states.PROPAGATE_STATES:
            return Outcome(call_id, "failed", error=error_text(meta.get("result")))
        return None  # retry, started: not an end

    def close(self) -> None:
        import contextlib

        if self.pubsub is not None:
            with contextlib.suppress(Exception):
                self.pubsub.close()
            self.pubsub = None


# -- one call from a cold process, without building a Celery app -------------------------


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
    """Send one call and return its result, as :func:`send` then :func:`wait` would.

    For ``flow task run`` (a process that makes one call and exits) importing Celery and
    building its app costs more than the call itself, so with a Redis result backend this
    speaks Celery's message protocol (version 2) through kombu and reads the result from
    Redis directly: the message, its headers, queue, exchange, persistence, confirms and
    publish retries are those ``send`` gives; the worker cannot tell the difference. Other
    result backends go through :func:`send` and :func:`wait`. ``on_sent(call_id)`` is
    called once the call is published.
    """
    from shellflow.engine.app import _transport_url

    backend = _transport_url(settings.backend)
    if not backend.startswith(("redis://", "rediss://", "redis+socket://")):
        sent = send(settings, socket, args, kwargs, flow=flow, parent=parent)
        if on_sent is not None:
            on_sent(sent.call_id)
        return wait(sent, timeout)
    route, queue = route_for(settings, socket)
    embedded.ensure_for_urls(settings.broker, settings.backend)
    call_id = str(uuid.uuid4())
    results = _ResultWatch(settings, backend, call_id)
    try:
        _publish(settings, route, queue, call_id, args, kwargs, flow or call_id, parent)
        if on_sent is not None:
            on_sent(call_id)
        return results.wait(timeout)
    finally:
        results.close()


def _publish(
    settings: Settings, route: SocketRoute, queue: Any, call_id: str, args: list[Any],
    kwargs: dict[str, Any], flow: str, parent: str | None,
) -> None:  # fmt: skip
    """Publish one task message exactly as Celery's ``send_task`` builds it (protocol 2)."""
    import os
    import socket as pysocket

    from kombu import Connection
    from kombu.exceptions import OperationalError

    from shellflow.engine.app import PUBLISH_RETRY, _transport_url, celery_conf

    headers: dict[str, Any] = {
        "lang": "py", "task": route.name, "id": call_id, "shadow": None, "eta": None,
        "expires": None, "group": None, "group_index": None, "retries": 0,
        "timelimit": [None, None], "root_id": call_id, "parent_id": None,
        "argsrepr": repr(args), "kwargsrepr": repr(kwargs),
        "origin": f"gen{os.getpid()}@{pysocket.gethostname()}", "ignore_result": False,
        "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {}, FLOW_HEADER: flow,
    }  # fmt: skip
    if parent:
        headers[PARENT_HEADER] = parent
    body = (args, kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None})
    if route.qtype == "topic":
        exchange, routing_key = queue.exchange, route.name
    else:  # the default exchange, by queue name (as Celery sends to a direct queue)
        exchange, routing_key = "", queue.name
    options = celery_conf(settings)["broker_transport_options"]
    try:
        with Connection(_transport_url(settings.broker), transport_options=options) as conn:
            conn.Producer(serializer="json").publish(
                body, exchange=exchange, routing_key=routing_key, declare=[queue],
                headers=headers, delivery_mode=2, retry=True, retry_policy=PUBLISH_RETRY,
                correlation_id=call_id, reply_to=str(uuid.uuid4()),
            )  # fmt: skip
    except (OSError, OperationalError) as exc:
        raise ServiceUnavailable("broker", settings.broker, str(exc)) from exc


class _ResultWatch:
    """Waits for one call's result in the Redis result backend, subscribed before it is sent."""

    LOOK_EVERY = 1.0  # seconds between reads of the stored result, should a message be lost

    def __init__(self, settings: Settings, url: str, call_id: str) -> None:
        import redis

        self.settings = settings
        self.call_id = call_id
        self.key = f"celery-task-meta-{call_id}"
        if url.startswith("redis+socket://"):
            url = "unix://" + url[len("redis+socket://") :]
        try:
            self.client = redis.Redis.from_url(url)
            self.pubsub = self.client.pubsub()
            self.pubsub.subscribe(self.key)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                message = self.pubsub.get_message(timeout=1.0)
                if message and message["type"] == "subscribe":
                    return
            raise OSError("no answer to SUBSCRIBE")
        except (OSError, redis.RedisError) as exc:
            raise ServiceUnavailable("result backend", settings.backend, str(exc)) from exc

    def wait(self, timeout: float | None) -> Any:
        import json

        import redis

        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                left = self.LOOK_EVERY
                if deadline is not None:
                    left = min(left, deadline - time.monotonic())
                    if left <= 0:
                        raise TimedOut(f"call {self.call_id} did not finish within {timeout:g} s")
                message = self.pubsub.get_message(timeout=left)
                data = message["data"] if message and message["type"] == "message" else None
                if data is None:
                    data = self.client.get(self.key)
                if data is not None:
                    meta = json.loads(data)
                    if meta.get("status") in ("SUCCESS", "FAILURE", "REVOKED"):
                        return self._value(meta)
        except (OSError, redis.RedisError) as exc:
            raise ServiceUnavailable("result backend", self.settings.backend, str(exc)) from exc

    def _value(self, meta: dict[str, Any]) -> Any:
        status, value = meta["status"], meta.get("result")
        if status == "SUCCESS":
            return value
        if status == "REVOKED":
            raise CallFailed(f"call {self.call_id} was cancelled")
        if isinstance(value, dict) and "exc_type" in value:
            words = value.get("exc_message")
            text = " ".join(str(w) for w in words) if isinstance(words, list) else str(words)
            raise CallFailed(text or str(value["exc_type"]))
        raise CallFailed(str(value))

    def close(self) -> None:
        import contextlib

        with contextlib.suppress(Exception):
            self.pubsub.close()
            self.client.close()
