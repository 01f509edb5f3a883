"""One Redis client per kombu channel, in a worker on a Redis broker.

kombu's Redis transport builds a new ``redis.Redis`` for every synchronous operation it
makes, among them each acknowledgement (``Channel.conn_or_acquire``). The client holds no
connection of its own (it borrows one from the channel's pool), but building it fills a
table of a few hundred response callbacks: measured in a shellflow worker's main process
during a burst on the embedded broker, about 14% of its CPU, some 100 us per call. A
channel's one client serves every such operation as well, so the worker keeps it.

Only the worker's main process uses it (Celery's event loop: one thread), and a channel
whose pool was replaced gets a new client.
"""

from __future__ import annotations

from typing import Any

_MARK = "_shellflow_reuses_clients"


def reuse_redis_clients() -> None:
    """Patch kombu's Redis channel to keep its synchronous client (idempotent)."""
    from kombu.transport import redis as transport

    original = transport.Channel._create_client
    if getattr(original, _MARK, False):
        return

    def _create_client(self: Any, asynchronous: bool = False) -> Any:
        if asynchronous:  # publishing and BRPOP: left as kombu makes them
            return original(self, asynchronous=True)
        client = self.__dict__.get("_shellflow_client")
        if client is None or client.connection_pool is not self.pool:
            client = self.__dict__["_shellflow_client"] = original(self)
        return client

    setattr(_create_client, _MARK, True)
    _create_client.__wrapped__ = original  # type: ignore[attr-defined]  # kombu's own, for tests
    transport.Channel._create_client = _create_client  # type: ignore[method-assign]
