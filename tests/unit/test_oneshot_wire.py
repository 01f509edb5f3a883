"""The one-call path's own AMQP and Redis speech, against py-amqp's encoding and real servers.

``flow task run`` publishes without kombu and reads its result without redis-py
(``shellflow.engine.transport.amqpwire``, ``resultwire``); a worker must not be able to tell its
message from one kombu sends, and the result must be read as Celery's backend stores it.
"""

from __future__ import annotations

import json
import socket
import uuid
from typing import Any

import pytest

from shellflow.engine.transport import amqpwire, resultwire
from tests.conftest import REDIS_URL

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"

HEADERS: dict[str, Any] = {
    "lang": "py", "task": "a.b", "id": "x", "shadow": None, "retries": 0,
    "timelimit": [None, None], "argsrepr": "['é']", "ignore_result": False, "stamps": {},
    "big": 2**40, "ratio": 0.5, "nested": {"list": [1, "two", None, True]},
}  # fmt: skip
PROPS = {
    "content_type": "application/json", "content_encoding": "utf-8",
    "application_headers": HEADERS, "delivery_mode": 2, "priority": 0,
    "correlation_id": "x", "reply_to": "r",
}  # fmt: skip


def test_url_choice() -> None:
    assert amqpwire.handles("amqp://guest:guest@host:5672//")
    assert amqpwire.handles("pyamqp://host")
    assert not amqpwire.handles("amqps://host")  # TLS: kombu
    assert not amqpwire.handles("amqp://host//?heartbeat=10")  # options: kombu
    assert not amqpwire.handles("redis://host")
    assert amqpwire._endpoint("amqp://u%40x:p%2Fw@h:1234/v%2Fh") == ("h", 1234, "u@x", "p/w", "v/h")
    assert amqpwire._endpoint("amqp://h//") == ("h", 5672, "guest", "guest", "/")
    assert amqpwire._endpoint("amqp://h") == ("h", 5672, "guest", "guest", "/")
    assert resultwire.handles("redis://:pw@h:6380/2")
    assert resultwire.handles("redis+socket:///tmp/r.sock")
    assert resultwire.handles("unix:///tmp/r.sock?db=3")
    assert not resultwire.handles("rediss://h")
    assert not resultwire.handles("redis://h/0?socket_timeout=1")
    assert resultwire._endpoint("redis://u:p%21@h:6380/2") == (
        ("h", 6380),
        socket.AF_INET,
        "u",
        "p!",
        2,
    )
    assert resultwire._endpoint("unix:///tmp/r.sock?db=3")[::4] == ("/tmp/r.sock", 3)


def test_encoding_matches_py_amqp() -> None:
    """Method arguments, header tables and message properties, byte for byte."""
    from amqp.basic_message import Message
    from amqp.serialization import dumps

    assert amqpwire.table(HEADERS) == dumps("F", [HEADERS])
    message = Message(b"{}", **{k: v for k, v in PROPS.items() if k != "application_headers"},
                      application_headers=HEADERS)  # fmt: skip
    assert amqpwire.properties(PROPS) == message._serialize_properties()
    declare = amqpwire._shortstr("ex") + amqpwire._shortstr("topic")
    assert (
        amqpwire.struct.pack(">H", 0) + declare + amqpwire._bits(False, True, False, False, False)
        + amqpwire.table({})
        == dumps("BssbbbbbF", (0, "ex", "topic", False, True, False, False, False, {}))
    )  # fmt: skip
    with pytest.raises(ValueError):
        amqpwire.properties({"expiration": "1"})  # not spoken here: refused, not dropped


def _consume_one(channel: Any, queue: str) -> Any:
    for _ in range(50):
        message = channel.basic_get(queue, no_ack=True)
        if message is not None:
            return message
        import time

        time.sleep(0.1)
    raise AssertionError(f"nothing arrived in {queue}")


@pytest.mark.parametrize("qtype", ["direct", "topic"])
def test_published_message_equals_kombus(qtype: str) -> None:
    """The same message through kombu and through amqpwire arrives identically."""
    import amqp
    from kombu import Connection, Exchange, Queue

    suffix = uuid.uuid4().hex[:8]
    exchange, queue = f"sfwire.x.{suffix}", f"sfwire.q.{suffix}"
    kq = Queue(queue, exchange=Exchange(exchange, type=qtype, durable=True),
               routing_key=queue, durable=True, auto_delete=False)  # fmt: skip
    to = (kq.exchange, queue) if qtype == "topic" else ("", queue)
    body = (["é", 1], {"k": None}, {"callbacks": None})
    with Connection(AMQP_URL, transport_options={"confirm_publish": True}) as conn:
        conn.Producer(serializer="json").publish(
            body, exchange=to[0], routing_key=to[1], declare=[kq], headers=HEADERS,
            delivery_mode=2, correlation_id="x", reply_to="r",
        )  # fmt: skip
    declare = amqpwire.Declare(exchange, qtype, queue, queue, True)
    amqpwire.publish(AMQP_URL, [declare], exchange if qtype == "topic" else "", queue,
                     json.dumps(body).encode(), PROPS, {"max_retries": 0})  # fmt: skip
    admin = amqp.Connection("127.0.0.1:5672")
    admin.connect()
    channel = admin.channel()
    try:
        first, second = _consume_one(channel, queue), _consume_one(channel, queue)
        assert second.properties == first.properties
        assert json.loads(second.body) == json.loads(first.body)
        assert second.delivery_info["exchange"] == first.delivery_info["exchange"]
        assert second.delivery_info["routing_key"] == first.delivery_info["routing_key"]
        # Declaring again with another durability is refused by the broker: said, not retried.
        with pytest.raises(amqpwire.BrokerError, match=r"PRECONDITION_FAILED") as refused:
            amqpwire.publish(AMQP_URL, [amqpwire.Declare(exchange, qtype, queue, queue, False)],
                             "", queue, b"{}", PROPS, {"max_retries": 3})  # fmt: skip
        assert not refused.value.recoverable
    finally:
        channel.queue_delete(queue)
        channel.exchange_delete(exchange)
        admin.close()


def test_unreachable_broker_is_retried_then_reported() -> None:
    with pytest.raises(amqpwire.BrokerError) as caught:
        amqpwire.publish("amqp://guest:guest@127.0.0.1:9//", [], "", "q", b"{}", PROPS,
                         {"max_retries": 2, "interval_start": 0, "interval_step": 0.01,
                          "interval_max": 0.01})  # fmt: skip
    assert caught.value.recoverable


def test_result_channel_reads_published_and_stored_results() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    call_id = str(uuid.uuid4())
    key = resultwire.KEY_PREFIX + call_id
    channel = resultwire.ResultChannel(REDIS_URL, call_id)
    try:
        assert channel.next(0.05) is None
        assert channel.stored() is None
        client.set(key, b'{"status": "SUCCESS"}', ex=60)  # as Celery's backend: set, publish
        client.publish(key, b'{"status": "SUCCESS"}')
        assert channel.next(5) == b'{"status": "SUCCESS"}'
        assert channel.stored() == b'{"status": "SUCCESS"}'  # read from database 3
    finally:
        channel.close()
        client.delete(key)
        client.close()
    with pytest.raises(resultwire.RedisError):
        resultwire.ResultChannel("redis://127.0.0.1:9/0", call_id)
