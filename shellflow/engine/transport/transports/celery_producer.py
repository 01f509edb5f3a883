"""The Celery transport: a Celery app's producer pool, for processes that keep an app.

The Python API, the scheduler, streams and a worker's plugs keep one Celery app for the
life of the process; its producer pool saves a connection per call. :meth:`send` is the
publishing half of ``Celery.send_task`` (``producer_or_acquire``,
``_reraise_as_library_errors``, ``backend.on_task_call``, ``amqp.send_task_message``, the
parent task's trail) with shellflow's own message in place of ``create_task_message``'s,
so a call looks the same whichever transport carried it.

``subscribe`` keeps ``send_task``'s result subscription: Celery's Redis backend starts
listening for the call's result (``on_task_call``) before the message can be taken, which
the handles of ``shellflow.engine.calls.sender`` rely on, and the ``rpc://`` backend
declares its reply queue there. A stream collects its results itself (one subscription
for all its calls) and turns it off.
"""

from __future__ import annotations

from typing import Any

from shellflow.engine.transport.message import Origin, TaskMessage
from shellflow.engine.transport.routing import kombu_queue, publish_via
from shellflow.model.routes import SocketRoute


class CeleryTransport:
    """Publishes through ``app``'s producer pool, as ``app.send_task`` does."""

    def __init__(self, app: Any, *, subscribe: bool = True) -> None:
        from kombu.exceptions import OperationalError

        self.app = app
        self.subscribe = subscribe
        self.broker_url: str = app.conf.broker_url
        self.unavailable: tuple[type[BaseException], ...] = (OSError, OperationalError)
        self._options: dict[SocketRoute, dict[str, Any]] = {}

    def origin(self) -> Origin:
        """The app's reply address for this thread; the worker's current task, if the call
        is sent from inside one, as its parent (``send_task`` does the same)."""
        parent = self.app.current_worker_task
        if parent is None:
            return Origin(reply_to=self.app.thread_oid)
        request = parent.request
        return Origin(self.app.thread_oid, request.root_id or request.id, request.id)

    def send(self, message: TaskMessage) -> None:
        from celery.app.amqp import task_message

        app, call = self.app, message.call
        options = self._routed(call.route)
        celery_message = task_message(
            headers=dict(message.headers), properties=dict(message.properties),
            body=message.body, sent_event=None,
        )  # fmt: skip
        with (
            app.producer_or_acquire() as producer,
            producer.connection._reraise_as_library_errors(),
        ):
            if self.subscribe:
                app.backend.on_task_call(producer, call.call_id)
            app.amqp.send_task_message(producer, message.name, celery_message, **options)
        parent = app.current_worker_task
        if parent is not None:  # send_task's add_to_parent: the call joins its trail
            parent.add_trail(app.AsyncResult(call.call_id))

    def _routed(self, route: SocketRoute) -> dict[str, Any]:
        """``send_task``'s routing options for the socket (its queue, declared; the address
        of ``shellflow.engine.transport.routing``), worked out once per route."""
        options = self._options.get(route)
        if options is None:
            queue = kombu_queue(route, self.broker_url)
            wanted = {"queue": queue, "declare": [queue], **publish_via(route, queue)}
            # A race computes it twice, to the same value: no lock (a lock held at a fork
            # would stay held in the child).
            options = self._options[route] = self.app.amqp.router.route(
                wanted, route.name, (), {}, None
            )
        return dict(options)
