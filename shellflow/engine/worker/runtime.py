"""The worker runtime: serve one processor's sockets as Celery tasks.

Runs inside the processor's own environment (the agent starts it there): it imports the
processor's module from that environment, registers one task per socket under the socket's
name, consumes the sockets' queues and records every call. What the function prints is
captured into the call's log, never mixed into its result.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import os
import socket as pysocket
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from shellflow.config import Settings
from shellflow.engine.pids import ProcessId
from shellflow.engine.records.events import Publisher
from shellflow.engine.records.recorder import CallStart, Recorder
from shellflow.engine.records.spool import spool_root
from shellflow.engine.records.spool_writer import SpoolWriter
from shellflow.engine.records.store import RecordStore
from shellflow.engine.transport.celery_app import (
    FLOW_HEADER,
    PARENT_HEADER,
    SOURCES_HEADER,
    make_app,
)
from shellflow.engine.transport.kombu_redis import keep_taken_messages, reuse_redis_clients
from shellflow.engine.transport.result_store import store_without_reading
from shellflow.engine.transport.routing import kombu_queue
from shellflow.engine.worker import metrics
from shellflow.engine.worker.delivery import DeadLettered
from shellflow.engine.worker.watchdog import watch
from shellflow.errors import UsageError
from shellflow.model import result_keys
from shellflow.model.listing import reader
from shellflow.model.routes import SocketRoute, processor_routes
from shellflow.urls import is_redis
from shellflow.values import (
    LIMITS_DOC,
    MAX_OUTPUT_BYTES,
    ValueRefused,
    check_call,
    shown_text,
    size_text,
    text_problem,
)
from shellflow.values import problem as value_problem


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


MAX_SOURCES = 1000  # calls named as sources of one call, at most


def sources_of(header: Any) -> list[str] | None:
    """The calls a call received results from, when a message names several (a join's
    target, a funnel's final step); anything else in the header is ignored."""
    if not isinstance(header, list) or len(header) < 2:
        return None
    found = [item for item in header[:MAX_SOURCES] if isinstance(item, str) and len(item) <= 64]
    return found if len(found) >= 2 else None


def _register(
    app: Any,
    route: SocketRoute,
    function: Callable[..., Any],
    recorder: Recorder,
    timed: Callable[[Callable[..., Any]], Callable[..., Any]] = lambda run: run,
) -> None:
    """Serve ``route`` as a Celery task that records its call and then fires its plugs.

    The result goes along the socket's RESULT plugs once the call's record is written (an
    error along its ERROR plugs); a plug that cannot fire leaves an event on the source call
    and never changes the source call's own record or outcome. The recorder publishes each
    event on the live channels once it is stored (``shellflow.engine.records.events``).
    """
    import logging

    from shellflow.engine.dataflow.plugs import error_value, plugs_for

    log = logging.getLogger(__name__)
    worker_name = f"{route.processor}@{pysocket.gethostname()}"
    plugs = plugs_for(recorder.url)

    def fire(task: Any, call_id: str, flow: str, kind: str, value: Any) -> None:
        try:
            failed = plugs.fire(task.app, route, call_id, flow, kind, value)
            problems = [failure.problem for failure in failed]
        except Exception as exc:  # the plugs could not even be read
            failed, problems = [], [f"plugs of {route.name}: {type(exc).__name__}: {exc}"]
        # The source call's events first: each record is spooled as it is made and lines
        # commit in order, so whoever sees a failed planned call also sees why.
        for problem in problems:
            log.error("call %s of %s: %s did not fire", call_id, route.name, problem)
            try:
                recorder.event(call_id, "plug", f"Plug did not fire: {problem}"[:2000])
            except Exception as exc:  # said above; the source call's own outcome stands
                log.warning("call %s of %s: its plug event was not recorded: %s: %s",
                            call_id, route.name, type(exc).__name__, exc)  # fmt: skip
        for failure in failed:
            if failure.call_id is not None:  # the call the plug would have made: failed
                try:
                    recorder.undelivered(
                        CallStart(
                            call_id=failure.call_id, socket_id=failure.target.socket_id,
                            task_id=failure.target.task_id, name=failure.target.name,
                            args={"args": failure.args, "kwargs": failure.kwargs}, flow=flow,
                            parent=call_id, hostname=pysocket.gethostname(), worker=worker_name,
                        ),
                        failure.problem,
                    )  # fmt: skip
                except Exception as exc:  # its message is in <target>.dead (or said above)
                    log.warning("call %s of %s: the failed call %s of plug %s was not"
                                " recorded: %s: %s", call_id, route.name, failure.call_id,
                                failure.plug, type(exc).__name__, exc)  # fmt: skip

    @app.task(name=route.name, bind=True, acks_late=True, reject_on_worker_lost=True)
    @timed  # counted for the live metrics (shellflow.engine.worker.metrics)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        call_id = request.id
        flow = request.get(FLOW_HEADER) or call_id
        recorder.started(
            CallStart(
                call_id=call_id, socket_id=route.socket_id, task_id=route.task_id,
                name=route.name, args={"args": list(args), "kwargs": kwargs},
                flow=flow, parent=request.get(PARENT_HEADER),
                hostname=pysocket.gethostname(), worker=worker_name,
                sources=sources_of(request.get(SOURCES_HEADER)),
            ),
            redelivered=bool((request.delivery_info or {}).get("redelivered")),
        )  # fmt: skip
        captured = io.StringIO()
        try:
            refused = input_problem(args, kwargs)
            if refused is not None:
                raise ValueRefused(refused)
            with contextlib.redirect_stdout(captured):
                result = function(*args, **kwargs)
            printed = captured.getvalue()
            refused = result_problem(result, printed)
            if refused is not None:
                raise ValueRefused(refused)
        except Exception as exc:
            output = captured.getvalue().splitlines()
            message = shown_text(f"{type(exc).__name__}: {exc}")
            trace = traceback.format_exc()
            if isinstance(exc, ValueRefused):  # shellflow's own check: its reason says all
                message, trace = str(exc), ""
            if isinstance(exc, DeadLettered):
                # Set aside, not failed: its function never raised, so its ERROR plugs do
                # not fire; 'flow task retry' sends it again (shellflow.services.calls).
                recorder.failed(call_id, route.name, message, "", output, state="dead")
                raise SocketError(message) from None
            recorder.failed(call_id, route.name, message, trace, output)
            fire(self, call_id, flow, "ERROR", error_value(exc, call_id, route.name))
            raise SocketError(message) from None
        output = printed.splitlines()
        recorder.finished(call_id, route.name, result, output)
        fire(self, call_id, flow, "RESULT", result)
        return result


def input_problem(args: Any, kwargs: Any) -> str | None:
    """Why a message's input is refused (a client that did not check it sent it), or None."""
    try:
        check_call(args, kwargs)
    except ValueRefused as exc:
        return f"input refused: {exc} (see {LIMITS_DOC})"
    return None


def result_problem(result: Any, printed: str) -> str | None:
    """Why a call's result or printed output cannot be carried and recorded, or None:
    the call then fails with this reason rather than be half recorded."""
    found = value_problem(result)
    if found is not None:
        return f"result refused: {found} (see {LIMITS_DOC})"
    found = text_problem(printed)
    if found is None and len(printed) > MAX_OUTPUT_BYTES // 4:
        size = len(printed.encode("utf-8"))
        if size > MAX_OUTPUT_BYTES:
            found = f"{size} bytes, over the {size_text(MAX_OUTPUT_BYTES)} limit"
    if found is not None:
        return f"printed output refused: {found} (see {LIMITS_DOC})"
    return None


def build(
    settings: Settings, processor: str, path: Sequence[str] = (), *, concurrency: int = 1,
    agent: ProcessId | None = None,
) -> tuple[Any, list[SocketRoute]]:  # fmt: skip
    """The Celery app serving ``processor``'s sockets, and their routes.

    Each function runs inside ``shellflow.engine.worker.delivery.guard`` (the processor's retries,
    the redelivery cap with its dead-letter queue). A call's records are appended to its
    pool process's spool inside the task, so before its message is acknowledged, and
    committed in batches by the writer thread of the main process
    (``shellflow.engine.records.spool_writer``), which starts with the worker and drains the spool
    when it stops; anything still buffered in a pool process is spooled when it shuts down.
    """
    from celery import signals

    from shellflow.engine.worker.delivery import guard, policy_of
    from shellflow.engine.worker.undecodable import consumer_class

    for entry in reversed(path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    with reader(settings.db) as conn:
        routes = processor_routes(conn, processor)
        policy = policy_of(conn, processor)
    # The key results are signed with, read now (and made, on an older database): a worker
    # that starts while the database is up signs its results through a later outage.
    result_keys.ring_for(settings.db)
    if not routes:
        raise UsageError(f"processor {processor!r} has no sockets to serve")
    app = make_app(settings, name=f"shellflow.{processor}")
    store_without_reading(app)  # see shellflow.engine.transport.result_store
    if is_redis(settings.broker):
        reuse_redis_clients()  # see shellflow.engine.transport.kombu_redis
        keep_taken_messages()
    app.conf.task_queues = [kombu_queue(route, settings.broker) for route in routes]
    publisher = Publisher(settings.pubsub, processor)  # connects on first use, per process
    writer = SpoolWriter(
        spool_root(settings.home, settings.db, processor),
        RecordStore(settings.db, on_stored=publisher.publish),
    )
    recorder = Recorder(settings.db, writer.spool(), on_stored=publisher.publish)
    meter = metrics.Meter(len(routes), concurrency + 1)  # shared with the pool's processes
    for index, route in enumerate(routes):
        function = guard(load_function(route), route, policy, recorder)
        _register(app, route, function, recorder, functools.partial(meter.timed, index))
    worker_name = f"{processor}@{pysocket.gethostname()}"
    node_name = f"{processor}.{os.getpid()}@{pysocket.gethostname()}"  # as serve() names it
    sockets, agent_id = [r.name for r in routes], str(agent) if agent else None
    reporter = metrics.Reporter(meter, settings.pubsub, settings.broker, processor, sockets,
                                node_name, agent_id)  # fmt: skip
    metrics.install(reporter)
    app.conf.worker_consumer = consumer_class(recorder, routes, worker_name)

    names = {route.name for route in routes}

    def start_writer(**_: Any) -> None:
        writer.start()  # in the main process, before the pool's processes start

    def close_records(**_: Any) -> None:
        recorder.close()

    def stop_writer(**_: Any) -> None:
        recorder.close()  # the main process's own records (cancelled calls) first
        writer.stop()  # the pool's processes have ended: commit all that is left

    signals.worker_init.connect(start_writer, weak=False)
    signals.worker_process_shutdown.connect(close_records, weak=False)
    signals.worker_shutdown.connect(stop_writer, weak=False)
    _track_holdings(settings)
    honour_cancelled_calls(settings, recorder, names)
    return app, routes


CANCELLED_REMEMBERED = 10_000  # cancelled calls a starting worker loads from the records


def honour_cancelled_calls(settings: Settings, recorder: Recorder, names: set[str]) -> None:
    """Cancelled calls stay cancelled, whether this worker was running or not at the time.

    ``flow task cancel`` records the call as ``revoked`` and broadcasts the revoke to the
    workers running then; a worker starting later loads the cancelled calls that never
    started from the records into Celery's revoked set, so a call queued for a processor
    that was down is discarded when it comes back. A discarded call gets a ``revoked``
    event naming the worker that discarded it. ``flow task cancel --terminate`` stops a
    running call: Celery kills the pool process running it, acknowledges its message (a
    terminated request is not requeued, even with ``reject_on_worker_lost``) and sends
    ``task_revoked`` with ``terminated=True``; the call is then recorded ``revoked`` here,
    in the worker's main process, since the process that ran it is gone.
    """
    import logging

    from celery import signals
    from celery.worker import state

    log = logging.getLogger(__name__)
    where = f"{pysocket.gethostname()} (pid {os.getpid()})"

    def load(**_: Any) -> None:
        try:
            with reader(settings.db) as conn:
                rows = conn.query(
                    "SELECT id FROM call WHERE state = 'revoked' AND started IS NULL"
                    " ORDER BY lastupdated DESC LIMIT ?", [CANCELLED_REMEMBERED],
                )  # fmt: skip
        except Exception as exc:  # the worker still serves; broadcasts still reach it
            log.warning("cancelled calls not loaded: %s", exc)
            return
        for (call_id,) in rows:
            state.revoked.add(str(call_id))

    def discarded(
        sender: Any = None, request: Any = None, terminated: bool = False, **_: Any
    ) -> None:
        if getattr(sender, "name", None) in names and request is not None:
            doing = "Stopped while running" if terminated else "Discarded"
            recorder.event(request.id, "revoked", f"{doing} by the worker on {where}",
                           state="revoked")  # fmt: skip

    signals.worker_init.connect(load, weak=False)
    signals.task_revoked.connect(discarded, weak=False)


def _track_holdings(settings: Settings) -> None:
    """On a Redis broker, record the messages this worker holds (``engine.transport.unacked``)."""
    import logging

    from celery import signals

    from shellflow.engine.records.events import redis_client
    from shellflow.engine.transport.unacked import Holdings

    if not is_redis(settings.broker):
        return
    holdings: list[Holdings] = []  # made in the main process on its first message

    def received(request: Any = None, **_: Any) -> None:
        tag = getattr(getattr(request, "message", None), "delivery_tag", None)
        if tag is None:
            return
        if not holdings:
            holdings.append(Holdings(redis_client(settings.broker)))
        holdings[0].received(str(tag))

    def forget(**_: Any) -> None:
        if holdings:
            try:
                holdings[0].forget()
            except Exception as exc:  # harmless: kombu restores its unacked messages itself
                logging.getLogger(__name__).warning(
                    "held messages not forgotten at shutdown: %s: %s", type(exc).__name__, exc
                )

    signals.task_received.connect(received, weak=False)
    signals.worker_shutdown.connect(forget, weak=False)


def serve(
    settings: Settings,
    processor: str,
    *,
    concurrency: int = 1,
    path: Sequence[str] = (),
    loglevel: str = "WARNING",
    agent: ProcessId | None = None,
    events: bool = False,
    deployment: str | None = None,
) -> None:
    """Run a worker in the foreground until it is stopped (SIGTERM: warm shutdown), or,
    with ``agent``, until that process (the agent that started it) ends
    (:mod:`shellflow.engine.worker.watchdog`). ``events``: send Celery's task events and
    worker heartbeats (``celery -A ... worker -E``), for ``celery events`` and Flower.
    ``deployment``: the share of a spread processor it serves (its autoscaling bounds)."""
    from celery import signals

    from shellflow.engine.transport.unacked import restore_dead
    from shellflow.engine.worker.autoscale import worker_options
    from shellflow.redact import mask_handlers

    def masked(logger: Any = None, **_: Any) -> None:  # URLs in the worker's log: masked
        if logger is not None:
            mask_handlers(logger)

    signals.after_setup_logger.connect(masked, weak=False)
    signals.after_setup_task_logger.connect(masked, weak=False)
    if agent is not None:
        if not agent.alive():
            raise UsageError(f"--agent {agent}: no such process (its agent is gone)")

        def guard(**_: Any) -> None:  # once the pool has forked: the thread is this process's
            watch(agent)

        signals.worker_ready.connect(guard, weak=False)
    app, routes = build(settings, processor, path, concurrency=concurrency, agent=agent)
    restore_dead(app)  # messages a worker killed without a word still holds (Redis brokers)
    queues = [queue.name for queue in app.conf.task_queues]
    scaling = worker_options(app, settings, processor, queues,  # engine.worker.autoscale
                             deployment=deployment, concurrency=concurrency)  # fmt: skip
    worker = app.Worker(
        # Unique per process: RabbitMQ refuses a second worker with the same node name.
        hostname=f"{processor}.{os.getpid()}@{pysocket.gethostname()}",
        queues=[route.name for route in routes],
        concurrency=concurrency,
        pool="prefork",
        loglevel=loglevel,
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=not events,
        task_events=events,
        quiet=True,
        **scaling,
    )
    worker.start()
    sys.exit(worker.exitcode or 0)
