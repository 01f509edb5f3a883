"""Sockets as broker objects: the socket's queue is an exchange, each socket its own queue.

An exchange per user-defined queue (of its type: direct, topic or fanout) with one durable
queue per socket bound by the socket's name means messages for different processors never
land in a worker that cannot run them, and a call waits in its queue while no worker runs.

**How a call is addressed.** A call names one socket and runs once, whatever the type of
its socket's queue:

- direct and fanout: it is published to the socket's own queue (the broker's default
  exchange, routing by queue name), so a fanout exchange does not copy it into the other
  sockets' queues (each of which would run it again under the same call id). What is
  published to a fanout exchange by other software still reaches every socket bound to it;
- topic: it is published to the topic exchange with the socket's name as routing key.

**Fanout on Redis.** kombu's Redis transport carries a fanout exchange over pub/sub: a
queue bound to one is consumed by subscribing, not from its list, and a message published
while no consumer listens is gone. That breaks at-least-once delivery, so on a Redis broker
(the embedded default) a fanout queue's socket queues are bound to an exchange of the same
name as direct ones; the type is kept in the model and honoured on RabbitMQ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shellflow.model.routes import SocketRoute
from shellflow.urls import is_redis, transport_url


@dataclass(frozen=True)
class Declare:
    """The exchange, queue and binding a call to a socket declares before it is published
    (what kombu declares for ``declare=[queue]``), in a form every transport reads."""

    exchange: str
    exchange_type: str
    queue: str
    routing_key: str
    durable: bool


def declaration(route: SocketRoute, broker_url: str = "") -> Declare:
    """The socket's exchange, queue and binding on this broker (fanout on Redis: direct)."""
    qtype = "direct" if route.qtype == "fanout" and is_redis(broker_url) else route.qtype
    return Declare(
        exchange=route.queue, exchange_type=qtype, queue=route.name, routing_key=route.name,
        durable=route.durable,
    )  # fmt: skip


def address(route: SocketRoute) -> tuple[str, str]:
    """The exchange and routing key a call to ``route`` is published with: the default
    exchange by queue name (direct, fanout), or the topic exchange by the socket's name.
    :func:`publish_via` says the same in Celery's ``send_task`` options."""
    return (route.queue, route.name) if route.qtype == "topic" else ("", route.name)


def queue_of(declare: Declare) -> Any:
    """The declaration as a kombu ``Queue`` (with its exchange)."""
    from kombu import Exchange, Queue

    exchange = Exchange(declare.exchange, type=declare.exchange_type, durable=declare.durable)
    return Queue(
        declare.queue, exchange=exchange, routing_key=declare.routing_key,
        durable=declare.durable, auto_delete=False,
    )  # fmt: skip


def kombu_queue(route: SocketRoute, broker_url: str = "") -> Any:
    return queue_of(declaration(route, broker_url))


def publish_via(route: SocketRoute, queue: Any) -> dict[str, Any]:
    """The exchange and routing key a call to ``route`` is published with (docstring)."""
    if route.qtype == "topic":
        return {"exchange": queue.exchange, "routing_key": route.name}
    # Celery sends to the default exchange, by queue name, when the exchange type is direct.
    return {} if route.qtype == "direct" else {"exchange_type": "direct"}


def delete_broker_objects(
    broker_url: str, queues: Sequence[str], exchanges: Sequence[str] = ()
) -> None:
    """Delete queues (and the messages in them) and exchanges on the broker.

    For tests and benchmarks that share one RabbitMQ with others: what they declared must
    not outlive them.
    """
    from kombu import Connection

    with Connection(transport_url(broker_url)) as conn:
        channel = conn.channel()
        for name in queues:
            channel.queue_delete(name)
        for name in exchanges:
            channel.exchange_delete(name)
