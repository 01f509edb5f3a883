"""Sockets as broker objects: the socket's queue is an exchange, each socket its own queue.

An exchange per user-defined queue (of its type: direct, topic or fanout) with one durable
queue per socket bound by the socket's name means messages for different processors never
land in a worker that cannot run them, and a call waits in its queue while no worker runs.
"""

from __future__ import annotations

from typing import Any

from shellflow.model.routes import SocketRoute


def kombu_queue(route: SocketRoute) -> Any:
    from kombu import Exchange, Queue

    exchange = Exchange(route.queue, type=route.qtype, durable=route.durable)
    return Queue(
        route.name, exchange=exchange, routing_key=route.name, durable=route.durable,
        auto_delete=False,
    )  # fmt: skip
