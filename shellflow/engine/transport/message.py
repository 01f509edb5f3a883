"""A call on its way out, and the one builder of the Celery task message that carries it.

Every call shellflow sends (a cold ``flow task run``, ``--async``, a stream, the Python API,
the scheduler, a plug) is an :class:`OutgoingCall`, and :func:`build` alone turns it into
the protocol-2 message Celery's ``send_task`` would send: the same headers, body and
properties, with shellflow's provenance headers added. A worker cannot tell whose it is;
``tests/unit/test_protocol2.py`` compares it key by key with Celery's own.

Building it here rather than through ``app.amqp.create_task_message`` lets a cold process
send a call without importing Celery, and keeps one answer to "what does a call look like
on the wire" for every transport (``shellflow.engine.transport.publisher``). The module
imports nothing heavy: Celery's ``saferepr`` only for a value too long to show whole.
"""

from __future__ import annotations

import json
import os
import socket as pysocket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shellflow.engine.transport.celery_app import (
    ARGUMENT_HEADER,
    FLOW_HEADER,
    PARENT_HEADER,
    SOURCES_HEADER,
)
from shellflow.engine.transport.routing import Declare, address, declaration
from shellflow.model.routes import SocketRoute
from shellflow.values import check_call

REPR_MAX = 1024  # Celery's argsrepr_maxsize: the header shows at most this much of a value
# The AMQP properties kombu's producer gives a Celery task message (its json serializer,
# task_default_delivery_mode="persistent", kombu's default priority).
DELIVERY: dict[str, Any] = {
    "content_type": "application/json",
    "content_encoding": "utf-8",
    "delivery_mode": 2,
    "priority": 0,
}


@dataclass(frozen=True)
class OutgoingCall:
    """One call to send: which socket, with what, and where it comes from.

    ``parent`` is the call whose result this one receives; ``sources`` every call whose
    result it receives when there are several (a join's target, a funnel's last step),
    de-duplicated in order by :meth:`make`; ``argument`` the keyword a plug fills.
    """

    call_id: str
    route: SocketRoute
    args: list[Any]
    kwargs: dict[str, Any]
    flow: str
    parent: str | None = None
    sources: tuple[str, ...] = ()
    argument: str | None = None

    @classmethod
    def make(
        cls, route: SocketRoute, args: list[Any], kwargs: dict[str, Any], *,
        call_id: str | None = None, flow: str | None = None,
        parent: str | Sequence[str] | None = None, sources: Sequence[str] = (),
        argument: str | None = None,
    ) -> OutgoingCall:  # fmt: skip
        """A call with a fresh id (unless given), in its own flow run unless ``flow`` names
        one. ``parent`` may list several calls (a funnel's members): the last is its
        parent, all of them its sources."""
        check_call(args, kwargs)  # refused here, not half carried (shellflow.values)
        call_id = call_id or str(uuid.uuid4())
        if parent is not None and not isinstance(parent, str):
            listed = list(dict.fromkeys(parent))
            sources = sources or listed
            parent = listed[-1] if listed else None
        return cls(
            call_id=call_id, route=route, args=args, kwargs=kwargs, flow=flow or call_id,
            parent=parent or None, sources=tuple(dict.fromkeys(sources)), argument=argument,
        )  # fmt: skip

    @property
    def provenance(self) -> dict[str, Any]:
        """shellflow's own headers (read in the worker by ``request.get``).

        Sources travel only when there are two or more: one source is the parent already,
        and the worker ignores a shorter list (``shellflow.engine.worker.runtime.sources_of``).
        """
        headers: dict[str, Any] = {FLOW_HEADER: self.flow}
        if self.parent:
            headers[PARENT_HEADER] = self.parent
        if len(self.sources) > 1:
            headers[SOURCES_HEADER] = list(self.sources)
        if self.argument:
            headers[ARGUMENT_HEADER] = self.argument
        return headers


@dataclass(frozen=True)
class Origin:
    """Who sends: where an ``rpc://`` result backend replies (Celery sends the sending app's
    ``thread_oid``), and the Celery task, if any, whose child the call is (``root_id``,
    ``parent_id``: ``send_task`` fills them from the worker's current task)."""

    reply_to: str
    root_id: str | None = None
    parent_id: str | None = None


@dataclass(frozen=True)
class TaskMessage:
    """A call as it goes on the wire: protocol-2 headers, body, properties and address."""

    call: OutgoingCall
    headers: dict[str, Any]
    body: tuple[list[Any], dict[str, Any], dict[str, Any]]
    properties: dict[str, Any]  # correlation_id and reply_to, as create_task_message's
    declare: Declare
    exchange: str  # "" is the default exchange (by queue name)
    routing_key: str

    @property
    def name(self) -> str:
        return self.call.route.name

    def encoded(self) -> bytes:
        """The body as kombu's json serializer writes it (byte for byte)."""
        return json.dumps(self.body).encode("utf-8")


def build(call: OutgoingCall, broker_url: str, origin: Origin) -> TaskMessage:
    """The message Celery's ``send_task`` gives this call (protocol 2), on this broker.

    As Celery's ``as_task_v2``: no arguments are shown as ``()``, a call with no parent
    task is its own root.
    """
    headers: dict[str, Any] = {
        "lang": "py", "task": call.route.name, "id": call.call_id, "shadow": None,
        "eta": None, "expires": None, "group": None, "group_index": None, "retries": 0,
        "timelimit": [None, None], "root_id": origin.root_id or call.call_id,
        "parent_id": origin.parent_id, "argsrepr": shown(call.args or ()),
        "kwargsrepr": shown(call.kwargs or {}), "origin": origin_name(),
        "ignore_result": False, "replaced_task_nesting": 0, "stamped_headers": None,
        "stamps": {}, **call.provenance,
    }  # fmt: skip
    body = (
        call.args,
        call.kwargs,
        {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
    )
    exchange, routing_key = address(call.route)
    return TaskMessage(
        call=call, headers=headers, body=body,
        properties={"correlation_id": call.call_id, "reply_to": origin.reply_to},
        declare=declaration(call.route, broker_url), exchange=exchange, routing_key=routing_key,
    )  # fmt: skip


def origin_name() -> str:
    """The sending process as Celery's ``anon_nodename`` names it."""
    return f"gen{os.getpid()}@{pysocket.gethostname()}"


def shown(value: Any) -> str:
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
