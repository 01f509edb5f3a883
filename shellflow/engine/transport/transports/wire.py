"""The AMQP wire transport: plain ``amqp://`` without kombu, for a cold process.

A cold ``flow task run`` sends one message; importing kombu and py-amqp costs more than
the whole exchange with the broker, so :mod:`shellflow.engine.transport.amqpwire` speaks it:
declare as kombu's ``declare=[queue]`` does, publish with the properties kombu's producer
sets, wait for the confirm, retry a lost connection as Celery's publish retry policy says.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from shellflow.engine.transport import amqpwire
from shellflow.engine.transport.celery_app import PUBLISH_RETRY
from shellflow.engine.transport.message import DELIVERY, Origin, TaskMessage


class WireTransport:
    """Publishes over a connection of its own per message (one call per process)."""

    unavailable: tuple[type[BaseException], ...] = (amqpwire.BrokerError,)

    def __init__(
        self, url: str, retry: Mapping[str, float] = PUBLISH_RETRY, deadline: float | None = None
    ) -> None:
        self.broker_url = url
        self.retry = retry
        self.deadline = deadline  # time.monotonic() by which a send ends (None: the wire's own)

    def origin(self) -> Origin:
        """No Celery app, hence no ``thread_oid``: a fresh address, as only ``rpc://``
        reads it and the one-shot call waits on Redis results only."""
        return Origin(reply_to=str(uuid.uuid4()))

    def send(self, message: TaskMessage) -> None:
        props = {**DELIVERY, "application_headers": message.headers, **message.properties}
        amqpwire.publish(
            self.broker_url, [message.declare], message.exchange, message.routing_key,
            message.encoded(), props, self.retry, deadline=self.deadline,
        )  # fmt: skip
