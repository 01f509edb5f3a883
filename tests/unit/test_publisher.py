"""The one call publisher, in process: plugs and joins publishing on the stub transport.

No broker, worker or subprocess: the plugs of a finished call publish through
``shellflow.engine.transport.publisher.publish`` onto a ``StubTransport``, which keeps the
messages exactly as built for a broker. Joins keep their arguments in a SQLite file (only
the ``join_state`` table), as a worker's would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from shellflow.engine.dataflow.joins import JOIN
from shellflow.engine.dataflow.plugs import Outlet, Plugs, join_slots, plugged_call_id
from shellflow.engine.transport.celery_app import (
    ARGUMENT_HEADER,
    FLOW_HEADER,
    PARENT_HEADER,
    SOURCES_HEADER,
)
from shellflow.engine.transport.message import OutgoingCall
from shellflow.engine.transport.publisher import publish
from shellflow.engine.transport.transports.stub import StubTransport
from shellflow.errors import ServiceUnavailable
from shellflow.model.routes import SocketRoute


def _route(name: str, socket_id: str, qtype: str = "direct") -> SocketRoute:
    return SocketRoute(
        name=name, processor="proc", module="m", function="f", queue="q", qtype=qtype,
        durable=True, processor_status="started", requested_status="started",
        socket_id=socket_id, task_id="t-" + socket_id,
    )  # fmt: skip


SOURCE = _route("source", "s-source")
TARGET = _route("target", "s-target")


class StubPlugs(Plugs):
    """Plugs with outlets given by the test and joins kept in the test's database."""

    def __init__(self, transport: StubTransport, outlets: list[Outlet], db: Engine) -> None:
        super().__init__("sqlite://", transport=transport)
        self._given = outlets
        self._db = db

    @property
    def engine(self) -> Engine:
        return self._db

    def outlets(self, socket_id: str) -> list[Outlet]:
        return self._given if socket_id == SOURCE.socket_id else []


@pytest.fixture
def db(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'joins.db'}", connect_args={"timeout": 30})
    JOIN.create(engine)
    return engine


def test_a_result_plug_publishes_the_follow_up_call(db: Engine) -> None:
    stub = StubTransport()
    outlet = Outlet("plug-1", "p1", "RESULT", "text", TARGET)
    plugs = StubPlugs(stub, [outlet], db)

    assert plugs.fire(None, SOURCE, "call-1", "flow-1", "RESULT", "hello", backoff=()) == []
    assert plugs.fire(None, SOURCE, "call-1", "flow-1", "ERROR", {"e": 1}, backoff=()) == []

    (message,) = stub.to("target")
    assert message.call.call_id == plugged_call_id("call-1/plug-1")  # fixed by its cause
    assert message.body[:2] == ([], {"text": "hello"})
    assert message.headers[FLOW_HEADER] == "flow-1"
    assert message.headers[PARENT_HEADER] == "call-1"
    assert message.headers[ARGUMENT_HEADER] == "text"
    assert message.headers["task"] == "target" and message.headers["id"] == message.call.call_id
    assert (message.exchange, message.routing_key) == ("", "target")


def test_a_plug_retries_a_refusing_broker_then_delivers(db: Engine) -> None:
    stub = StubTransport()
    stub.refuse(2)
    plugs = StubPlugs(stub, [Outlet("plug-1", "p1", "RESULT", None, TARGET)], db)
    assert plugs.fire(None, SOURCE, "call-2", "flow-2", "RESULT", 7, backoff=(0, 0)) == []
    (message,) = stub.messages
    assert message.body[:2] == ([7], {})
    assert ARGUMENT_HEADER not in message.headers


def test_a_plug_that_cannot_deliver_says_why_in_the_brokers_words(db: Engine) -> None:
    stub = StubTransport()
    stub.refuse(5)
    plugs = StubPlugs(stub, [Outlet("plug-1", "p1", "RESULT", None, TARGET)], db)
    (failed,) = plugs.fire(None, SOURCE, "call-3", "flow-3", "RESULT", 7, backoff=(0,))
    assert failed.call_id == plugged_call_id("call-3/plug-1")
    assert failed.reason.startswith("ConnectionRefusedError: stub broker refused")
    assert not failed.dead_lettered  # no app here to reach the dead-letter queue
    assert stub.messages == []


def test_a_join_publishes_once_with_every_argument_and_its_sources(db: Engine) -> None:
    transport = StubTransport()
    slots = join_slots(False, ["a", "b"])
    outlets = [
        Outlet("plug-a", "pa", "RESULT", "a", TARGET, slots),
        Outlet("plug-b", "pb", "RESULT", "b", TARGET, slots),
    ]
    only_a = StubPlugs(transport, outlets[:1], db)
    only_b = StubPlugs(transport, outlets[1:], db)

    only_a.fire(None, SOURCE, "call-a", "flow-j", "RESULT", 1, backoff=())
    assert transport.messages == []  # waits for b
    only_b.fire(None, SOURCE, "call-b", "flow-j", "RESULT", 2, backoff=())
    only_b.fire(None, SOURCE, "call-b", "flow-j", "RESULT", 2, backoff=())  # redelivered

    (message,) = transport.to("target")
    assert message.body[:2] == ([], {"a": 1, "b": 2})
    assert message.headers[SOURCES_HEADER] == ["call-a", "call-b"]
    assert message.headers[PARENT_HEADER] == "call-b"  # the arrival that completed it
    assert ARGUMENT_HEADER not in message.headers


def test_publish_reports_an_unreachable_broker_to_a_user_only_when_asked() -> None:
    stub = StubTransport()
    call = OutgoingCall.make(TARGET, [1], {})
    stub.refuse(2)
    with pytest.raises(ServiceUnavailable, match="broker unavailable at memory://"):
        publish(stub, call, shown_url="memory://")
    with pytest.raises(ConnectionRefusedError):
        publish(stub, call)
    sent = publish(stub, call)
    assert stub.messages == [sent] and sent.properties["reply_to"] == "stub-reply"


@pytest.mark.parametrize("qtype", ["direct", "topic", "fanout"])
def test_the_route_decides_the_address_and_declaration(qtype: str) -> None:
    route = _route("sock", "s-1", qtype)
    on_redis = StubTransport("redis://localhost/0")
    sent: Any = publish(on_redis, OutgoingCall.make(route, [], {}))
    assert (sent.exchange, sent.routing_key) == (
        ("q", "sock") if qtype == "topic" else ("", "sock")
    )
    # kombu carries a fanout exchange over pub/sub on Redis: declared direct there.
    assert sent.declare.exchange_type == ("direct" if qtype == "fanout" else qtype)
    amqp = publish(StubTransport("amqp://h//"), OutgoingCall.make(route, [], {}))
    assert amqp.declare.exchange_type == qtype
