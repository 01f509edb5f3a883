"""The task messages shellflow builds by hand, key by key against the ones Celery builds.

Every call shellflow sends is built by ``shellflow.engine.transport.message.build`` (never by
``app.send_task``) and carried by one of the publisher's transports
(``shellflow.engine.transport.publisher``):

- a cold ``flow task run`` (``shellflow.client.oneshot``) builds no Celery app: the wire
  transport (``shellflow.engine.transport.amqpwire``, plain ``amqp://``) or a bare kombu
  producer sends the message;
- the Python API, the scheduler, plugs (``CeleryTransport``) and streams
  (``shellflow.engine.calls.bursts.Burst.send``, without the per-call result subscription)
  send it through a Celery app's producer pool and ``app.amqp.send_task_message``.

A worker must not be able to tell their messages from ``send_task``'s. Each test builds the
same call both ways: shellflow's way, and Celery's (``app.amqp.create_task_message`` with
the arguments ``send_task`` gives it, or ``app.send_task`` itself, as shellflow called it
before it had its own builder, published to kombu's in-memory transport and read back) on
a ``Celery`` app configured with ``shellflow.engine.transport.celery_app.celery_conf``. No
server is needed. The only differences allowed are named below, each with why.
"""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery

from shellflow.client import oneshot
from shellflow.engine.transport import amqpwire
from shellflow.engine.transport.celery_app import (
    ARGUMENT_HEADER,
    FLOW_HEADER,
    PARENT_HEADER,
    SOURCES_HEADER,
    celery_conf,
)
from shellflow.engine.transport.message import Origin, OutgoingCall, build
from shellflow.engine.transport.publisher import publish
from shellflow.engine.transport.routing import Declare, kombu_queue, publish_via
from shellflow.engine.transport.transports.celery_producer import CeleryTransport
from shellflow.model.routes import SocketRoute

# Headers shellflow adds to Celery's own: its provenance. Celery sends them too, given as
# ``send_task(headers=...)``; the worker reads them with ``request.get`` (see
# test_private_apis).
ADDED_HEADERS = {
    FLOW_HEADER: "the flow run the call belongs to (every path sends it)",
    PARENT_HEADER: "the call whose result this call receives (only when there is one)",
    SOURCES_HEADER: "every call whose result it receives, when there are two or more",
    ARGUMENT_HEADER: "the keyword argument a plug fills",
}
# Headers whose value may differ from Celery's, and why that is harmless.
DIFFERENT_HEADERS = {
    "ignore_result": (
        "send_task pops the option and passes None for a task name not registered in the"
        " sending app (no shellflow client registers its sockets), while"
        " create_task_message's default and shellflow's builder give False; a worker reads"
        " the header as a truth value, so both mean 'store the result'"
    ),
}
# AMQP properties whose value may differ from Celery's, and why that is harmless.
DIFFERENT_PROPERTIES = {
    "reply_to": (
        "Celery sends the sending app's thread_oid; oneshot builds no app and sends a fresh"
        " uuid4. Only the rpc:// result backend replies there, and the one-shot path reads"
        " results itself only from Redis (resultwire.handles); with any other backend it"
        " goes through send_task"
    ),
}
# The AMQP properties kombu's producer gives a Celery task message (kombu's json
# serializer, task_default_delivery_mode="persistent", kombu's default priority); the
# correlation id is the call's id, checked separately.
CELERY_PROPERTIES = {
    "content_type": "application/json",
    "content_encoding": "utf-8",
    "delivery_mode": 2,
    "priority": 0,
}

ARGS: list[Any] = ["é", 1, 2.5, None, True, {"a": [1, "two"]}, ["x"] * 3]
KWARGS: dict[str, Any] = {"n": 3, "text": "a 'quoted' \"word\"", "nested": {"k": [None]}}


def _route(qtype: str = "direct") -> SocketRoute:
    suffix = uuid.uuid4().hex[:8]
    return SocketRoute(
        name=f"sfp2.sock.{suffix}", processor="sfp2", module="m", function="f",
        queue=f"sfp2.q.{suffix}", qtype=qtype, durable=True, processor_status="started",
        requested_status="started", socket_id="s", task_id="t",
    )  # fmt: skip


def _settings(broker: str) -> Any:
    """What the publishing code reads of the settings (no database, no home)."""
    return SimpleNamespace(broker=broker, backend="redis://127.0.0.1:1/0", db="sqlite://")


def _celery(backend: str | None = None) -> Celery:
    """A Celery app with shellflow's settings on kombu's in-memory transport.

    Without a result backend by default: ``send_task`` subscribes to the result of each call
    on a Redis backend, which would need a server; the message does not depend on it.
    """
    app = Celery(f"sfp2_{uuid.uuid4().hex[:6]}", broker="memory://", backend=backend)
    app.conf.update(celery_conf(_settings("memory://")))
    return app


def _celery_message(app: Celery, route: SocketRoute, call_id: str, headers: dict[str, Any]
                    ) -> Any:  # fmt: skip
    """Publish the call as shellflow.engine.calls.sender.send does; the message kombu delivers."""
    queue = kombu_queue(route, "memory://")
    app.send_task(
        route.name, args=ARGS, kwargs=KWARGS, task_id=call_id, queue=queue, declare=[queue],
        headers=headers, **publish_via(route, queue),
    )  # fmt: skip
    return _take(app, route)


def _take(app: Celery, route: SocketRoute) -> Any:
    with app.connection_for_read() as conn:
        message = kombu_queue(route, "memory://")(conn.default_channel).get(no_ack=True)
    assert message is not None, f"nothing was published to {route.name}"
    return message


def _compare(ours: dict[str, Any], celery: dict[str, Any], allowed: dict[str, str],
             added: dict[str, str] | None = None) -> None:  # fmt: skip
    """Key by key: the same keys (except ``added``), the same values (except ``allowed``)."""
    added = added or {}
    missing = sorted(set(celery) - set(ours))
    extra = sorted(set(ours) - set(celery) - set(added))
    assert not missing, f"shellflow leaves out {missing} (Celery sends them)"
    assert not extra, f"shellflow adds {extra}, which Celery does not send"
    different = {
        key: (ours[key], celery[key])
        for key in celery
        if key not in allowed and ours[key] != celery[key]
    }
    assert not different, f"(shellflow, Celery) differ: {different}"


def _headers_of(message: Any) -> dict[str, Any]:
    return dict(message.headers)


# -- oneshot.message against app.amqp.create_task_message ---------------------------------


@pytest.mark.parametrize("parent", [None, "0b8a1f34-parent"])
def test_oneshot_message_equals_create_task_message(parent: str | None) -> None:
    """Headers, body and correlation id, against what create_task_message builds as
    send_task calls it (reply_to the app's thread_oid, no sent event)."""
    route, call_id, flow = _route(), str(uuid.uuid4()), str(uuid.uuid4())
    app = _celery()
    call = OutgoingCall.make(route, ARGS, KWARGS, call_id=call_id, flow=flow, parent=parent)
    ours = build(call, "memory://", Origin(reply_to=app.thread_oid))
    headers, body = ours.headers, ours.body
    built = app.amqp.create_task_message(
        call_id, route.name, ARGS, KWARGS, reply_to=app.thread_oid,
        create_sent_event=app.conf.task_send_sent_event,
    )  # fmt: skip
    _compare(headers, built.headers, allowed={}, added=ADDED_HEADERS)
    assert headers[FLOW_HEADER] == flow
    assert headers.get(PARENT_HEADER) == parent
    assert body == built.body
    assert json.dumps(body) == json.dumps(built.body)
    assert set(built.properties) == {"correlation_id", "reply_to"}
    assert built.properties["correlation_id"] == call_id
    assert ours.properties == built.properties
    assert built.sent_event is None


def test_create_task_message_headers_are_the_ones_shellflow_writes() -> None:
    """The protocol-2 header names, as a list: a new or renamed header in a Celery release
    shows here by name, before any comparison of values."""
    app = _celery()
    built = app.amqp.create_task_message("i", "n", [], {}, reply_to="r")
    assert sorted(built.headers) == sorted([
        "lang", "task", "id", "shadow", "eta", "expires", "group", "group_index", "retries",
        "timelimit", "root_id", "parent_id", "argsrepr", "kwargsrepr", "origin",
        "ignore_result", "replaced_task_nesting", "stamped_headers", "stamps",
    ])  # fmt: skip
    assert len(built.body) == 3
    assert sorted(built.body[2]) == ["callbacks", "chain", "chord", "errbacks"]


@pytest.mark.parametrize(
    ("args", "kwargs"), [(["x" * 5000], {}), ([], {}), ([], {"k": "y" * 3000})],
    ids=["long", "none", "long-keyword"],
)  # fmt: skip
def test_argsrepr_is_celerys(args: list[Any], kwargs: dict[str, Any]) -> None:
    """A long value is cut as Celery cuts it; no arguments show as Celery's ``()``."""
    route, call_id = _route(), str(uuid.uuid4())
    call = OutgoingCall.make(route, args, kwargs, call_id=call_id)
    headers = build(call, "memory://", Origin(reply_to="r")).headers
    app = _celery()
    built = app.amqp.create_task_message(call_id, route.name, args, kwargs, reply_to="r")
    assert headers["argsrepr"] == built.headers["argsrepr"]
    assert headers["kwargsrepr"] == built.headers["kwargsrepr"]


# -- the whole message on the wire, against app.send_task ----------------------------------


@pytest.mark.parametrize("qtype", ["direct", "topic", "fanout"])
def test_oneshot_wire_publish_equals_send_task(qtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What oneshot hands to amqpwire (plain amqp://): declaration, exchange, routing key,
    properties, headers and body bytes, against the message send_task publishes."""
    sent: list[dict[str, Any]] = []

    def capture(url: str, declare: Any, exchange: str, routing_key: str, body: bytes,
                props: Any, retry: Any, deadline: float | None = None) -> None:  # fmt: skip
        sent.append({"declare": declare, "exchange": exchange, "routing_key": routing_key,
                     "body": body, "props": dict(props), "retry": retry})  # fmt: skip

    monkeypatch.setattr(amqpwire, "publish", capture)
    broker = "amqp://guest:guest@127.0.0.1:5672//"
    route, call_id, flow, parent = _route(qtype), str(uuid.uuid4()), "f-1", "p-1"
    oneshot.publish(_settings(broker), route, call_id, ARGS, KWARGS, flow, parent)
    assert len(sent) == 1, "oneshot did not take the wire path for a plain amqp:// URL"
    wire = sent[0]
    props = wire["props"]
    app = _celery()
    celery = _celery_message(app, route, call_id, {FLOW_HEADER: flow, PARENT_HEADER: parent})

    _compare(props.pop("application_headers"), _headers_of(celery), DIFFERENT_HEADERS)
    assert props.pop("correlation_id") == celery.properties["correlation_id"] == call_id
    assert props.pop("reply_to") and celery.properties["reply_to"]  # see DIFFERENT_PROPERTIES
    celery_props = {
        "content_type": celery.content_type, "content_encoding": celery.content_encoding,
        "delivery_mode": celery.properties["delivery_mode"],
        "priority": celery.properties["priority"],
    }  # fmt: skip
    assert celery_props == CELERY_PROPERTIES
    assert props == CELERY_PROPERTIES
    assert wire["body"] == celery.body  # byte for byte: kombu's json writes the same text
    assert (wire["exchange"], wire["routing_key"]) == (
        celery.delivery_info["exchange"],
        celery.delivery_info["routing_key"],
    )
    # The declaration send_task makes (declare=[queue]) on the same broker URL.
    queue = kombu_queue(route, broker)
    assert wire["declare"] == [
        Declare(
            exchange=queue.exchange.name, exchange_type=queue.exchange.type, queue=queue.name,
            routing_key=queue.routing_key, durable=queue.durable,
        )
    ]  # fmt: skip
    assert wire["retry"] == app.conf.task_publish_retry_policy


@pytest.mark.parametrize("qtype", ["direct", "topic"])
def test_oneshot_kombu_publish_equals_send_task(qtype: str) -> None:
    """oneshot's other transport (a Redis broker, TLS, URL options): kombu without Celery."""
    route, call_id, flow = _route(qtype), str(uuid.uuid4()), "f-2"
    app = _celery()
    oneshot.publish(_settings("memory://"), route, call_id, ARGS, KWARGS, flow, None)
    ours = _take(app, route)
    celery = _celery_message(app, route, call_id, {FLOW_HEADER: flow})
    _compare(_headers_of(ours), _headers_of(celery), DIFFERENT_HEADERS)
    allowed = set(DIFFERENT_PROPERTIES) | {"delivery_tag"}  # the transport's own, per message
    assert {k: v for k, v in ours.properties.items() if k not in allowed} == {
        k: v for k, v in celery.properties.items() if k not in allowed
    }
    assert (ours.content_type, ours.content_encoding) == (
        celery.content_type,
        celery.content_encoding,
    )
    assert ours.body == celery.body
    assert ours.delivery_info == celery.delivery_info


# -- Burst.send against app.send_task ------------------------------------------------------


def test_burst_message_equals_send_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream's calls (create_task_message and send_task_message called by shellflow)."""
    from shellflow.engine.calls import bursts

    route = _route("direct")
    app = _celery(backend="redis://127.0.0.1:1/0")  # Redis: the burst's native path
    monkeypatch.setattr(bursts, "app_for", lambda settings: app)
    monkeypatch.setattr(bursts, "route_for", lambda settings, socket: route)
    burst = bursts.Burst(_settings("memory://"), route.name)
    assert burst.native, "the burst did not recognise Celery's Redis result backend"
    call_id = burst.send(ARGS, KWARGS, flow="f-3", parent="p-3")
    ours = _take(app, route)
    reference = _celery()
    celery = _celery_message(reference, route, call_id, {FLOW_HEADER: "f-3", PARENT_HEADER: "p-3"})
    _compare(_headers_of(ours), _headers_of(celery), DIFFERENT_HEADERS)
    assert ours.properties["reply_to"] == app.thread_oid  # as send_task: the sending app's
    assert celery.properties["reply_to"] == reference.thread_oid
    allowed = {"reply_to", "delivery_tag"}
    assert {k: v for k, v in ours.properties.items() if k not in allowed} == {
        k: v for k, v in celery.properties.items() if k not in allowed
    }
    assert ours.body == celery.body
    assert ours.delivery_info == celery.delivery_info


# -- CeleryTransport (sender, scheduler, plugs) against app.send_task ----------------------


@pytest.mark.parametrize("qtype", ["direct", "topic", "fanout"])
def test_celery_transport_message_equals_send_task(qtype: str) -> None:
    """The Python API's, the scheduler's and the plugs' calls: the publisher on an app's
    producer pool, against send_task with the same headers (a plug's, with its argument)."""
    route, call_id = _route(qtype), str(uuid.uuid4())
    app = _celery()
    call = OutgoingCall.make(route, ARGS, KWARGS, call_id=call_id, flow="f-4", parent="p-4",
                             argument="n")  # fmt: skip
    publish(CeleryTransport(app), call)
    ours = _take(app, route)
    headers = {FLOW_HEADER: "f-4", PARENT_HEADER: "p-4", ARGUMENT_HEADER: "n"}
    celery = _celery_message(app, route, call_id, headers)
    _compare(_headers_of(ours), _headers_of(celery), DIFFERENT_HEADERS)
    assert ours.properties["reply_to"] == celery.properties["reply_to"] == app.thread_oid
    allowed = {"delivery_tag"}
    assert {k: v for k, v in ours.properties.items() if k not in allowed} == {
        k: v for k, v in celery.properties.items() if k not in allowed
    }
    assert ours.body == celery.body
    assert ours.delivery_info == celery.delivery_info


def test_a_call_sent_inside_a_task_is_its_child_as_with_send_task() -> None:
    """From inside a worker's task (a plug firing), Celery's lineage headers name the task
    as parent and its root as root, and the call joins the task's trail."""
    from celery._state import _task_stack

    app = _celery()

    @app.task(name="sfp2.source", bind=True)
    def source(self: Any) -> None:  # pragma: no cover - only its request is used
        pass

    route = _route("direct")
    source.push_request(id="src-1", root_id="root-1", called_directly=False)
    _task_stack.push(source)
    try:
        call = OutgoingCall.make(route, ARGS, KWARGS, flow="f-5", parent="src-1")
        publish(CeleryTransport(app), call)
        ours = _take(app, route)
        children = list(source.request.children)
        celery = _celery_message(app, route, str(uuid.uuid4()),
                                 {FLOW_HEADER: "f-5", PARENT_HEADER: "src-1"})  # fmt: skip
    finally:
        _task_stack.pop()
        source.pop_request()
    assert (ours.headers["root_id"], ours.headers["parent_id"]) == ("root-1", "src-1")
    assert (celery.headers["root_id"], celery.headers["parent_id"]) == ("root-1", "src-1")
    assert [child.id for child in children] == [call.call_id]


def test_sources_are_deduplicated_once_and_sent_when_several() -> None:
    route = _route()
    funnel = OutgoingCall.make(route, [], {}, parent=["a", "b", "a", "c"])
    assert (funnel.parent, funnel.sources) == ("c", ("a", "b", "c"))
    assert funnel.provenance[SOURCES_HEADER] == ["a", "b", "c"]
    join = OutgoingCall.make(route, [], {}, parent="x", sources=["b", "b"])
    assert join.parent == "x" and SOURCES_HEADER not in join.provenance  # one: the parent's
    assert OutgoingCall.make(route, [], {}, parent=[]).parent is None
