"""Plugs: a finished call's result, or a failed call's error, flows on to other sockets.

After a socket's function returns, the worker sends the result along each of the socket's
enabled RESULT plugs; after it raises, the error (a JSON object, see ``error_value``) goes
along its ERROR plugs. A plug with an argument passes the value as that keyword argument of
the target; one without passes it as the target's first positional argument. Values travel
as JSON values inside the message, never as JSON text.

Each call sent along a plug belongs to the same flow run as its source and names the source
as its parent (headers ``shellflow_flow`` and ``shellflow_parent``), so the call graph can
be rebuilt from the call records; it goes to the target socket's own durable queue, which
may be served by another processor's workers. Its id is derived from the source call and
the plug, so a source call delivered twice sends the same call twice, which its records
then count once.

A target fed by plugs into two or more different arguments (or marked ``wait``, in which
case a plug without an argument counts as one more input) is a join: it runs once every one
of those inputs has arrived for the same flow run (see ``shellflow.engine.dataflow.joins``).

**A plug that cannot deliver.** Sending along a plug is retried with a growing delay
(:data:`BACKOFF`, about eight seconds in all, while the source call's message stays
unacknowledged). If it still fails, the call it would have made is copied, with the
reason, to the target's dead-letter queue ``<target>.dead`` (as the redelivery cap does,
``shellflow.engine.worker.delivery``), and recorded: the planned call gets a ``failed`` row with a
``deadletter`` event (its id is the one the plug would have given it, so a later successful
delivery completes that same row), and the source call a ``plug`` event. The source call's
own outcome is never changed.

Plugs are read from the model database when a call ends, and each socket's list is reused
for ``PLUG_SECONDS`` at most, so a change of the network's topology is followed within that
time ("execution will follow the path of the current dataflow"). A forked child (a prefork
pool process) reads them afresh, on connections of its own (``shellflow.forks``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, bindparam, text

from shellflow import forks, process_state
from shellflow.engine.dataflow.joins import Arrival, arrive, release
from shellflow.engine.transport.celery_app import FLOW_HEADER, PARENT_HEADER
from shellflow.engine.transport.message import OutgoingCall
from shellflow.engine.transport.publisher import Transport, publish
from shellflow.model.db import get_engine
from shellflow.model.routes import SocketRoute

PLUG_SECONDS = 1.0
POSITIONAL = "*"  # the slot of a plug without an argument: the target's first argument
_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "https://shellflow/plugs")
BACKOFF = (0.2, 0.5, 1.0, 2.0, 4.0)  # seconds before each retry of a failed plug delivery

_OUTLETS = text(
    "SELECT pl.id, pl.name, pl.type, a.name, s.name, p.name, t.module, t.function, q.name,"
    " q.qtype, q.durable, p.status, p.requested_status, s.id, t.id, s.wait"
    " FROM plug pl JOIN socket s ON s.id = pl.target_id"
    " JOIN processor p ON p.id = s.processor_id JOIN task t ON t.id = s.task_id"
    " JOIN queue q ON q.id = s.queue_id LEFT JOIN argument a ON a.id = pl.argument_id"
    " WHERE pl.source_id = :source AND pl.enabled = :yes ORDER BY pl.name"
)
_INPUTS = text(
    "SELECT pl.target_id, a.name FROM plug pl LEFT JOIN argument a ON a.id = pl.argument_id"
    " WHERE pl.target_id IN :targets AND pl.enabled = :yes"
).bindparams(bindparam("targets", expanding=True))


@dataclass(frozen=True)
class Undelivered:
    """A plug that could not deliver after its retries, and what it would have sent."""

    plug: str
    target: SocketRoute
    call_id: str | None  # the call it would have made (None: a join's arrival)
    args: list[Any]
    kwargs: dict[str, Any]
    reason: str
    dead_lettered: bool

    @property
    def problem(self) -> str:
        where = f"moved to {self.target.name}.dead" if self.dead_lettered else "not dead-lettered"
        return f"plug {self.plug}: {self.reason} ({where})"


@dataclass(frozen=True)
class Outlet:
    """One enabled plug leaving a socket, with where its target's calls go."""

    plug_id: str
    name: str
    type: str  # RESULT or ERROR
    argument: str | None
    target: SocketRoute
    slots: frozenset[str] = field(default_factory=frozenset)  # the join's inputs, if any

    @property
    def slot(self) -> str:
        return self.argument or POSITIONAL

    @property
    def joins(self) -> bool:
        return self.slot in self.slots


def join_slots(wait: bool, arguments: Iterable[str | None]) -> frozenset[str]:
    """The inputs a target joins on, given its plugs' arguments; empty when it does not."""
    arguments = list(arguments)
    slots = {name for name in arguments if name}
    if wait and any(name is None for name in arguments):
        slots.add(POSITIONAL)
    return frozenset(slots) if len(slots) > 1 else frozenset()


def read_outlets(engine: Engine, socket_id: str) -> list[Outlet]:
    """The enabled plugs leaving a socket (two indexed queries)."""
    with engine.connect() as conn:
        rows = conn.execute(_OUTLETS, {"source": socket_id, "yes": True}).all()
        if not rows:
            return []
        targets = sorted({str(row[13]) for row in rows})
        inputs: dict[str, list[str | None]] = {target: [] for target in targets}
        for target, argument in conn.execute(_INPUTS, {"targets": targets, "yes": True}):
            inputs[str(target)].append(argument)
    outlets = []
    for row in rows:
        plug_id, name, kind, argument, *route, wait = row
        target = SocketRoute(
            name=str(route[0]), processor=str(route[1]), module=str(route[2]),
            function=str(route[3]), queue=str(route[4]), qtype=str(route[5]),
            durable=bool(route[6]), processor_status=str(route[7]),
            requested_status=str(route[8]), socket_id=str(route[9]), task_id=str(route[10]),
        )  # fmt: skip
        slots = join_slots(bool(wait), inputs[target.socket_id])
        outlets.append(Outlet(str(plug_id), str(name), str(kind), argument, target, slots))
    return outlets


def error_value(exc: BaseException, call_id: str, socket: str) -> dict[str, Any]:
    """What an ERROR plug carries: the error's type and message, and the failed call."""
    return {"type": type(exc).__name__, "message": str(exc), "call": call_id, "socket": socket}


def plugged_call_id(*parts: str) -> str:
    """A call id fixed by what caused the call, so a repeated cause repeats the same id."""
    return str(uuid.uuid5(_IDS, "/".join(parts)))


class Plugs:
    """Reads and fires one process's plugs (a prefork child opens its own connections).

    Calls go through the one publisher on ``transport`` when given (a test's
    ``StubTransport``), else on the firing app's producer pool.
    """

    def __init__(
        self, url: str, ttl: float = PLUG_SECONDS, transport: Transport | None = None
    ) -> None:
        self.url = url
        self.ttl = ttl
        self.transport = transport
        self.after_fork()
        forks.at_fork(self.after_fork)

    def after_fork(self) -> None:
        """Read the plugs afresh; the engine's pooled connections are the parent's
        (``shellflow.model.db`` leaves them to it), and so is a firing app's pool."""
        self._engine: Engine | None = None
        self._cache: dict[str, tuple[float, list[Outlet]]] = {}
        self._carrier: Any = None  # a CeleryTransport on the firing app, made on first use

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = get_engine(self.url)
        return self._engine

    def carrier(self, app: Any) -> Transport:
        """The transport plugs publish on: the given one, or ``app``'s producer pool."""
        if self.transport is not None:
            return self.transport
        if self._carrier is None or self._carrier.app is not app:
            from shellflow.engine.transport.transports.celery_producer import CeleryTransport

            self._carrier = CeleryTransport(app)
        carrier: Transport = self._carrier
        return carrier

    def outlets(self, socket_id: str) -> list[Outlet]:
        now = time.monotonic()
        cached = self._cache.get(socket_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = read_outlets(self.engine, socket_id)
        self._cache[socket_id] = (now + self.ttl, found)
        return found

    def fire(
        self, app: Any, source: SocketRoute, call_id: str, flow: str, kind: str, value: Any,
        backoff: tuple[float, ...] = BACKOFF,
    ) -> list[Undelivered]:  # fmt: skip
        """Send ``value`` along the socket's plugs of ``kind`` (RESULT or ERROR).

        Returns the plugs that could not deliver after their retries (already copied to
        their dead-letter queues when the broker took it); the others fire regardless.
        Raises only when the plugs themselves cannot be read.
        """
        failed = []
        for outlet in self.outlets(source.socket_id):
            if outlet.type != kind:
                continue
            for delay in (*backoff, None):
                try:
                    self._fire_one(app, outlet, call_id, flow, value)
                    break
                except Exception as exc:
                    if delay is None:
                        failed.append(self._dead_letter(app, outlet, call_id, flow, value, exc))
                    else:
                        time.sleep(delay)
        return failed

    def _dead_letter(
        self, app: Any, outlet: Outlet, call_id: str, flow: str, value: Any, exc: Exception
    ) -> Undelivered:
        """Copy what the plug would have sent to ``<target>.dead``, with the reason."""
        from shellflow.engine.transport.dead_letters import dead_letter

        reason = f"{type(exc).__name__}: {exc}"
        key = f"{call_id}/{outlet.plug_id}"
        target_call: str | None
        args: list[Any]
        kwargs: dict[str, Any]
        if outlet.joins:
            target_call, args, kwargs = None, [], {outlet.slot: value}
            try:  # the set it completed, if any, waits again without it
                release(self.engine, flow, outlet.target.socket_id, key)
            except Exception as stuck:  # the sweep removes it; the records say so
                reason += f"; its join set stays chosen: {type(stuck).__name__}: {stuck}"
        else:
            target_call = plugged_call_id(key)
            args, kwargs = ([], {outlet.argument: value}) if outlet.argument else ([value], {})
        body = {
            "id": target_call, "socket": outlet.target.name, "args": args, "kwargs": kwargs,
            "headers": {FLOW_HEADER: flow, PARENT_HEADER: call_id}, "plug": outlet.name,
            "join": outlet.joins, "reason": f"plug {outlet.name} could not deliver: {reason}",
            "dead_at": time.time(),
        }  # fmt: skip
        try:
            dead_letter(app, outlet.target.name, body)
            moved = True
        except Exception as dead:  # the broker itself is away: the records still say so
            reason += f"; dead-letter queue unreachable too: {type(dead).__name__}: {dead}"
            moved = False
        return Undelivered(outlet.name, outlet.target, target_call, args, kwargs, reason, moved)

    def _fire_one(self, app: Any, outlet: Outlet, call_id: str, flow: str, value: Any) -> None:
        key = f"{call_id}/{outlet.plug_id}"
        if not outlet.joins:
            args, kwargs = ([], {outlet.argument: value}) if outlet.argument else ([value], {})
            call = OutgoingCall.make(
                outlet.target, args, kwargs, call_id=plugged_call_id(key), flow=flow,
                parent=call_id, argument=outlet.argument,
            )  # fmt: skip
            publish(self.carrier(app), call)  # a failure's own error is its reason
            return

        def fire(inputs: dict[str, Arrival]) -> None:
            args = [inputs[POSITIONAL].value] if POSITIONAL in inputs else []
            kwargs = {name: got.value for name, got in inputs.items() if name != POSITIONAL}
            keys = sorted(got.key for got in inputs.values())
            target_call = plugged_call_id(flow, outlet.target.socket_id, *keys)
            sources = sorted({got.call for got in inputs.values()})
            call = OutgoingCall.make(
                outlet.target, args, kwargs, call_id=target_call, flow=flow, parent=call_id,
                sources=sources,
            )  # fmt: skip
            publish(self.carrier(app), call)

        arrival = Arrival(key=key, call=call_id, value=value)
        arrive(self.engine, flow, outlet.target.socket_id, outlet.slot, arrival, outlet.slots,
               fire)  # fmt: skip


class _Readers:
    """The process's plugs readers by model database; each resets itself after a fork."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_url: dict[str, Plugs] = {}

    def after_fork(self) -> None:
        self.lock = threading.Lock()  # the readers stay, each reset (Plugs.after_fork)


_readers = process_state.own(__name__, _Readers())


def plugs_for(url: str) -> Plugs:
    """The process's plugs reader for a model database (shared by its sockets)."""
    return process_state.made_once(_readers.by_url, _readers.lock, url, lambda: Plugs(url))
