"""Taking the waiting messages out of a socket's broker queue, keeping the ids of their calls.

A socket deleted or moved with ``--force`` (``shellflow.services.network``) leaves messages
in its queue that no worker will take. Purging would drop them unseen; reading them one by
one (``basic_get`` without acknowledgement, the same on Redis and AMQP through kombu) tells
whose calls they carried, so each can be recorded ``revoked`` and whoever waits for it
told. Only the socket's own queue is read: its name is the socket's, unique among sockets.
Messages a worker holds unacknowledged are not in the queue; they come back to it when the
worker stops, and are discarded then as revoked calls (``shellflow.engine.worker.runtime``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shellflow.engine.transport.celery_app import FLOW_HEADER

DRAIN_MAX = 1_000_000  # messages read from one queue at most (a bound, not an expectation)


@dataclass(frozen=True)
class Taken:
    """A call whose message was taken out: its id, socket (the task's name) and flow run."""

    call_id: str
    name: str | None
    flow: str | None


def drain(app: Any, queue: str) -> list[Taken]:
    """Remove every waiting message of broker queue ``queue``; the calls they carried.

    A queue the broker does not know holds nothing (AMQP answers 404: no error here).
    """
    from kombu import Queue

    taken: list[Taken] = []
    with app.connection_for_write() as connection:
        channel = connection.channel()
        try:
            bound = Queue(queue, no_declare=True)(channel)
            for _ in range(DRAIN_MAX):
                try:
                    message = bound.get(no_ack=True)
                except connection.channel_errors:  # not declared (AMQP 404)
                    break
                if message is None:
                    break
                call = _call_of(message)
                if call is not None:
                    taken.append(call)
        finally:
            _close(channel)
    return taken


def _call_of(message: Any) -> Taken | None:
    """The call a Celery task message (protocol 2) carries; None for a stranger's message."""
    headers = getattr(message, "headers", None) or {}
    found = headers.get("id") or (message.properties or {}).get("correlation_id")
    if not found:
        return None
    name, flow = headers.get("task"), headers.get(FLOW_HEADER)
    return Taken(str(found), str(name) if name else None, str(flow) if flow else None)


def _close(channel: Any) -> None:
    import contextlib

    with contextlib.suppress(Exception):
        channel.close()


def waiting(broker: str, queues: list[str], timeout: float = 5.0) -> dict[str, int]:
    """Messages waiting in each queue, read without taking them (a queue the broker does
    not know: 0). An embedded broker that is not running holds none here: nothing is asked.

    Redis (and the embedded broker) keeps a queue as a list named after it; AMQP answers a
    passive declare with its count. Raises what the client raises when the broker cannot
    be asked.
    """
    from shellflow.urls import is_redis, socket_path, transport_url

    if not queues:
        return {}
    if is_redis(broker):
        import redis

        path = socket_path(broker)
        if path is not None and not path.exists():
            return dict.fromkeys(queues, 0)
        client = (
            redis.Redis(unix_socket_path=str(path), socket_timeout=timeout)
            if path is not None
            else redis.Redis.from_url(broker, socket_timeout=timeout)
        )
        try:
            return {q: int(client.llen(q)) for q in queues}
        finally:
            client.close()
    from kombu import Connection

    depths: dict[str, int] = {}
    with Connection(transport_url(broker), connect_timeout=timeout) as connection:
        channel = connection.channel()
        for name in queues:
            try:
                depths[name] = int(channel.queue_declare(name, passive=True).message_count)
            except connection.channel_errors:  # not declared (404): the channel closes
                depths[name] = 0
                channel = connection.channel()
        _close(channel)
    return depths
