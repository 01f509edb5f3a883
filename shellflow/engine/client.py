"""Sending calls to sockets and waiting for their results."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from shellflow.config import Settings
from shellflow.engine.app import FLOW_HEADER, PARENT_HEADER, make_app
from shellflow.engine.routing import kombu_queue
from shellflow.errors import CallFailed, ServiceUnavailable, TimedOut
from shellflow.model.listing import reader
from shellflow.model.routes import socket_route


@dataclass(frozen=True)
class Sent:
    call_id: str
    flow: str
    handle: Any  # celery.result.AsyncResult


def send(
    settings: Settings,
    socket: str,
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    flow: str | None = None,
    parent: str | None = None,
) -> Sent:
    """Publish one call (persistent, to the socket's durable queue) and return at once."""
    with reader(settings.db) as conn:
        route = socket_route(conn, socket)
    app = make_app(settings)
    queue = kombu_queue(route)
    call_id = str(uuid.uuid4())
    flow = flow or call_id
    headers = {FLOW_HEADER: flow}
    if parent:
        headers[PARENT_HEADER] = parent
    try:
        handle = app.send_task(
            route.name, args=args, kwargs=kwargs, task_id=call_id, queue=queue,
            exchange=queue.exchange, routing_key=route.name, declare=[queue], headers=headers,
        )  # fmt: skip
    except OSError as exc:
        raise ServiceUnavailable("broker", settings.broker, str(exc)) from exc
    return Sent(call_id=call_id, flow=flow, handle=handle)


def wait(sent: Sent, timeout: float | None = None) -> Any:
    """The call's result; CallFailed with the remote message when the function raised."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    try:
        return sent.handle.get(timeout=timeout, propagate=True, disable_sync_subtasks=False)
    except CeleryTimeout as exc:
        raise TimedOut(f"call {sent.call_id} did not finish within {timeout:g} s") from exc
    except Exception as exc:
        raise CallFailed(str(exc) or type(exc).__name__) from exc
