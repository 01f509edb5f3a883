"""The kombu transport: a broker kombu speaks (Redis, TLS, URL options), without Celery.

For a cold process whose broker the AMQP wire does not take: a kombu ``Connection`` opened
for the message, a JSON producer, ``declare=[queue]``, persistent delivery and Celery's
publish retry policy, as ``send_task`` publishes through its pool.
"""

from __future__ import annotations

import uuid
from typing import Any

from shellflow.engine.transport.celery_app import PUBLISH_RETRY
from shellflow.engine.transport.message import Origin, TaskMessage
from shellflow.engine.transport.routing import queue_of


class KombuTransport:
    """Publishes over a kombu connection of its own per message."""

    def __init__(self, url: str, transport_options: dict[str, Any] | None = None) -> None:
        from kombu.exceptions import OperationalError

        self.broker_url = url
        self.transport_options = transport_options or {}
        self.unavailable: tuple[type[BaseException], ...] = (OSError, OperationalError)

    def origin(self) -> Origin:
        return Origin(reply_to=str(uuid.uuid4()))  # no app: see WireTransport.origin

    def send(self, message: TaskMessage) -> None:
        from kombu import Connection

        with Connection(self.broker_url, transport_options=self.transport_options) as conn:
            conn.Producer(serializer="json").publish(
                message.body, exchange=message.exchange, routing_key=message.routing_key,
                declare=[queue_of(message.declare)], headers=message.headers, delivery_mode=2,
                retry=True, retry_policy=PUBLISH_RETRY, **message.properties,
            )  # fmt: skip
