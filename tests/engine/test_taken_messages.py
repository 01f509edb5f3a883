"""A Redis broker killed between a worker's pop of a message and its record of it loses
nothing (``shellflow.engine.transport.kombu_redis.keep_taken_messages``).

The kill is made to land in that window for real: a private Redis server (with its
append-only file, as the embedded broker) is killed once its reply to the consumer's
``BRPOP`` is waiting on the consumer's socket, before the consumer reads it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from shellflow.engine.transport.kombu_redis import keep_taken_messages
from tests.private_redis import PrivateRedis, private_redis


@pytest.fixture
def redis() -> Iterator[PrivateRedis]:
    with private_redis() as server:
        yield server


def _queue() -> Any:
    from kombu import Exchange, Queue

    return Queue("taken", Exchange("taken", "direct", durable=True), "taken", durable=True)


def _consume_one(url: str, timeout: float) -> list[Any]:
    """What one consumer on a new connection receives within ``timeout`` (not acknowledged)."""
    from kombu import Connection

    got: list[Any] = []
    with Connection(url) as conn, conn.Consumer(_queue(), callbacks=[
        lambda body, message: got.append((body, message.delivery_info.get("redelivered")))
    ]), contextlib.suppress(TimeoutError):  # fmt: skip
        conn.drain_events(timeout=timeout)
    return got


def test_a_message_popped_as_the_broker_dies_is_put_back(
    redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kombu import Connection
    from kombu.transport import redis as transport

    keep_taken_messages()
    with Connection(redis.url) as conn:
        conn.Producer().publish({"n": 1}, exchange="taken", routing_key="taken",
                                declare=[_queue()], delivery_mode=2)  # fmt: skip
    read = transport.Channel._brpop_read
    killed: list[int] = []

    def kill_then_read(self: Any, **options: Any) -> Any:
        if not killed:  # the reply is on this socket: the server has popped the message
            killed.append(redis.pid or 0)
            redis.kill()
        return read(self, **options)

    monkeypatch.setattr(transport.Channel, "_brpop_read", kill_then_read)
    with pytest.raises(Exception) as lost:
        _consume_one(redis.url, 10)
    assert killed and "onnect" in type(lost.value).__name__ + str(lost.value)
    monkeypatch.setattr(transport.Channel, "_brpop_read", read)

    redis.start()  # from its append-only file, which holds the pop
    assert _consume_one(redis.url, 10) == [({"n": 1}, True)]  # back, flagged redelivered


def test_an_ack_on_a_channel_whose_connection_closed_is_a_connection_error(
    redis: PrivateRedis,
) -> None:
    """A call that ran while the broker was lost ends, and its worker acknowledges it on the
    old channel: Celery expects a connection error there (it logs it and goes on), and an
    ``AttributeError`` broke the worker's event loop (``reuse_redis_clients``)."""
    import logging

    from kombu import Connection

    from shellflow.engine.transport.kombu_redis import reuse_redis_clients

    reuse_redis_clients()
    with Connection(redis.url) as conn:
        conn.Producer().publish({"n": 2}, exchange="taken", routing_key="taken",
                                declare=[_queue()], delivery_mode=2)  # fmt: skip
    got: list[Any] = []
    conn = Connection(redis.url)
    with conn.Consumer(_queue(), callbacks=[lambda body, message: got.append(message)]):
        conn.drain_events(timeout=10)
    errors = conn.connection_errors
    [message] = got
    message.channel.do_restore = False  # nothing rebuilds its pool as it closes (the worker's case)
    redis.kill()
    conn.release()  # the broker and the connection are gone; the message is not acknowledged
    message.ack_log_error(logging.getLogger("test"), errors)  # logged, not raised
    assert not message.acknowledged
