"""The worker runtime: serve one processor's sockets as Celery tasks.

Runs inside the processor's own environment (the agent starts it there): it imports the
processor's module from that environment, registers one task per socket under the socket's
name, consumes the sockets' queues and records every call. What the function prints is
captured into the call's log, never mixed into its result.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import socket as pysocket
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from shellflow.config import Settings
from shellflow.engine.app import FLOW_HEADER, PARENT_HEADER, make_app
from shellflow.engine.records import CallStart, Recorder
from shellflow.engine.routing import kombu_queue
from shellflow.errors import UsageError
from shellflow.model.listing import reader
from shellflow.model.routes import SocketRoute, processor_routes


class SocketError(Exception):
    """A socket's function raised; carries the original type name and message as text.

    Raising this (instead of the function's own exception) keeps the result backend's JSON
    free of classes the client cannot import.
    """


def load_function(route: SocketRoute) -> Callable[..., Any]:
    try:
        module = importlib.import_module(route.module)
    except ImportError as exc:
        raise UsageError(
            f"socket {route.name!r}: cannot import module {route.module!r}: {exc}"
        ) from exc
    function = getattr(module, route.function, None)
    if not callable(function):
        raise UsageError(
            f"socket {route.name!r}: {route.module} has no function {route.function!r}"
        )
    return function


def _register(
    app: Any, route: SocketRoute, function: Callable[..., Any], recorder: Recorder
) -> None:
    worker_name = f"{route.processor}@{pysocket.gethostname()}"

    @app.task(name=route.name, bind=True, acks_late=True, reject_on_worker_lost=True)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        call_id = request.id
        recorder.started(
            CallStart(
                call_id=call_id, socket_id=route.socket_id, task_id=route.task_id,
                name=route.name, args={"args": list(args), "kwargs": kwargs},
                flow=request.get(FLOW_HEADER), parent=request.get(PARENT_HEADER),
                hostname=pysocket.gethostname(), worker=worker_name,
            ),
            redelivered=bool((request.delivery_info or {}).get("redelivered")),
        )  # fmt: skip
        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):
                result = function(*args, **kwargs)
        except Exception as exc:
            output = captured.getvalue().splitlines()
            message = f"{type(exc).__name__}: {exc}"
            recorder.failed(call_id, route.name, message, traceback.format_exc(), output)
            raise SocketError(message) from None
        recorder.finished(call_id, route.name, result, captured.getvalue().splitlines())
        return result


def build(
    settings: Settings, processor: str, path: Sequence[str] = ()
) -> tuple[Any, list[SocketRoute]]:
    """The Celery app serving ``processor``'s sockets, and their routes."""
    for entry in reversed(path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    with reader(settings.db) as conn:
        routes = processor_routes(conn, processor)
    if not routes:
        raise UsageError(f"processor {processor!r} has no sockets to serve")
    app = make_app(settings, name=f"shellflow.{processor}")
    app.conf.task_queues = [kombu_queue(route) for route in routes]
    recorder = Recorder(settings.db)
    for route in routes:
        _register(app, route, load_function(route), recorder)
    return app, routes


def serve(
    settings: Settings,
    processor: str,
    *,
    concurrency: int = 1,
    path: Sequence[str] = (),
    loglevel: str = "WARNING",
) -> None:
    """Run a worker in the foreground until it is stopped (SIGTERM: warm shutdown)."""
    app, routes = build(settings, processor, path)
    worker = app.Worker(
        hostname=f"{processor}@{pysocket.gethostname()}",
        queues=[route.name for route in routes],
        concurrency=concurrency,
        pool="prefork",
        loglevel=loglevel,
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
        quiet=True,
    )
    worker.start()
    sys.exit(worker.exitcode or 0)
