"""Two patches of kombu's Redis transport, in a worker on a Redis broker.

**One Redis client per kombu channel.**

kombu's Redis transport builds a new ``redis.Redis`` for every synchronous operation it
makes, among them each acknowledgement (``Channel.conn_or_acquire``). The client holds no
connection of its own (it borrows one from the channel's pool), but building it fills a
table of a few hundred response callbacks: measured in a shellflow worker's main process
during a burst on the embedded broker, about 14% of its CPU, some 100 us per call. A
channel's one client serves every such operation as well, so the worker keeps it.

Only the worker's main process uses it (Celery's event loop: one thread), and a channel
whose pool was replaced gets a new client. A channel whose connection was closed (the
broker was lost) raises a connection error, as a lost connection does: kombu would build
its pool again from the closed connection and raise ``AttributeError``, which nobody
expects. That happened when a call that ran while the broker was killed ended and its
worker acknowledged it on the old channel: Celery logs a connection error on an
acknowledgement and goes on ("Couldn't ack"; the restarted broker has put the message
back), but the ``AttributeError`` broke the worker's event loop, and the worker never
consumed again (a stream through an embedded broker's ``kill -9`` waited for good).

**No message lost between its pop and its record.** kombu takes a message with ``BRPOP``
(which removes it from its queue) and only then records it in the ``unacked`` hash, one
round trip later (``QoS.append``). A broker killed in between (the embedded broker's
``kill -9``, whose append-only file already holds the pop) keeps the message nowhere: the
record fails, and kombu drops the message it holds in memory with the connection. Under
load that window is the worker's whole event-loop latency, and a stream through such a
kill lost about one call in tens of runs (its output then waited for it forever). So a
message whose record fails is kept (:data:`_TAKEN`, this process's, never a forked child's)
and pushed back to the front of its queue, flagged redelivered, by the first poll on the
next connection, before it waits for more. What is left is Redis's own: a kill after the
server wrote the pop to its file and before it wrote the reply (within one turn of its
event loop, microseconds). The other way round, a record that reached the server although
its reply was lost is requeued by whoever starts the broker again as well
(``unacked.requeue_all``): that call runs twice (at least once; its records are
idempotent).
"""

from __future__ import annotations

import logging
import os
from typing import Any

_MARK = "_shellflow_reuses_clients"
_KEEPS = "_shellflow_keeps_taken"
# (pid, message body, exchange, routing key) of messages taken but not recorded as unacked.
_TAKEN: list[tuple[int, Any, str, str]] = []
log = logging.getLogger(__name__)


def reuse_redis_clients() -> None:
    """Patch kombu's Redis channel to keep its synchronous client (idempotent)."""
    from kombu.transport import redis as transport

    original = transport.Channel._create_client
    if getattr(original, _MARK, False):
        return

    def _create_client(self: Any, asynchronous: bool = False) -> Any:
        if asynchronous:  # publishing and BRPOP: left as kombu makes them
            return original(self, asynchronous=True)
        if self._pool is None and getattr(self.connection, "client", None) is None:
            raise _closed()
        client = self.__dict__.get("_shellflow_client")
        if client is None or client.connection_pool is not self.pool:
            client = self.__dict__["_shellflow_client"] = original(self)
        return client

    setattr(_create_client, _MARK, True)
    _create_client.__wrapped__ = original  # type: ignore[attr-defined]  # kombu's own, for tests
    transport.Channel._create_client = _create_client  # type: ignore[method-assign]


def _closed() -> Exception:
    """What an operation on a channel whose connection was closed raises: a connection
    error, as kombu's callers expect (see :func:`reuse_redis_clients`)."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    return RedisConnectionError("the broker connection of this channel was closed")


def keep_taken_messages() -> None:
    """Patch kombu's Redis QoS and channel so a message whose ``unacked`` record failed is
    put back on the next connection (see the module's docstring; idempotent)."""
    from kombu.transport import redis as transport

    append, start = transport.QoS.append, transport.Channel._brpop_start
    if getattr(append, _KEEPS, False):
        return

    def kept_append(self: Any, message: Any, delivery_tag: str) -> None:
        try:
            append(self, message, delivery_tag)
        except self.channel.connection_errors:
            info = message.delivery_info
            _TAKEN.append((os.getpid(), message._raw, info["exchange"], info["routing_key"]))
            raise

    def put_back_first(self: Any, timeout: Any = None) -> Any:
        if _TAKEN:
            put_back(self)
        return start(self, timeout)

    setattr(kept_append, _KEEPS, True)
    kept_append.__wrapped__ = append  # type: ignore[attr-defined]  # kombu's own, for tests
    put_back_first.__wrapped__ = start  # type: ignore[attr-defined]
    transport.QoS.append = kept_append  # type: ignore[method-assign]
    transport.Channel._brpop_start = put_back_first  # type: ignore[method-assign]


def put_back(channel: Any) -> int:
    """Push this process's kept messages back to the front of their queues; how many.

    A connection error leaves them kept, for the next poll."""
    mine = [entry for entry in _TAKEN if entry[0] == os.getpid()]
    if mine:
        with channel.conn_or_acquire() as client, client.pipeline() as pipe:
            for _, payload, exchange, routing_key in mine:
                channel._do_restore_message(payload, exchange, routing_key, pipe)
            pipe.execute()
        log.warning("put back %d message(s) taken as the broker stopped", len(mine))
    _TAKEN.clear()
    return len(mine)
