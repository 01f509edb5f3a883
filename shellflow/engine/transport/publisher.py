"""The one call publisher: an outgoing call, built once, carried by one of several transports.

Every caller (``flow task run`` and ``--async`` in ``shellflow.client.oneshot``, the Python
API and the scheduler through ``shellflow.engine.calls.sender``, streams through
``shellflow.engine.calls.bursts``, plugs and joins in ``shellflow.engine.dataflow.plugs``)
publishes with :func:`publish`. The message is built by
:func:`shellflow.engine.transport.message.build` alone; a :class:`Transport` only carries
it. The transports live beside this port in :mod:`shellflow.engine.transport.transports`:

- ``wire``: plain ``amqp://`` spoken over a socket (a cold process imports no kombu);
- ``kombu_connection``: kombu without Celery (a Redis broker, TLS, URL options);
- ``celery_producer``: a Celery app's producer pool, with the app's result subscription
  (``backend.on_task_call``) as ``send_task`` makes it, for processes that wait on handles;
- ``stub``: in memory, for tests that exercise callers without a broker.

:func:`transport_for` picks the cold process's transport from the broker URL; processes
that hold a Celery app use the app's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from shellflow.engine.transport.message import Origin, OutgoingCall, TaskMessage, build
from shellflow.errors import ServiceUnavailable
from shellflow.urls import transport_url

if TYPE_CHECKING:
    from shellflow.config import Settings


class Transport(Protocol):
    """Carries task messages to one broker: declared, persistent, confirmed and retried."""

    @property
    def broker_url(self) -> str:
        """The broker's URL (a fanout queue is declared direct on Redis)."""
        ...

    @property
    def unavailable(self) -> tuple[type[BaseException], ...]:
        """The errors that mean the broker could not be reached or refused the message."""
        ...

    def origin(self) -> Origin:
        """Who sends the next message: its reply address and parent task, if any."""
        ...

    def send(self, message: TaskMessage) -> None:
        """Publish the message (after its retries), or raise."""
        ...


def publish(
    transport: Transport, call: OutgoingCall, *, shown_url: str | None = None
) -> TaskMessage:
    """Build the call's message and send it; the message sent.

    With ``shown_url`` (the broker's URL as the user configured it), a broker that cannot
    be reached is :class:`ServiceUnavailable`, which the CLI reports as such; without it
    the transport's own error is raised (a plug records it as the reason it failed).
    """
    message = build(call, transport.broker_url, transport.origin())
    try:
        transport.send(message)
    except transport.unavailable as exc:
        if shown_url is None:
            raise
        raise ServiceUnavailable("broker", shown_url, str(exc)) from exc
    return message


def transport_for(settings: Settings, deadline: float | None = None) -> Transport:
    """A cold process's transport: the AMQP wire when it can, else kombu. ``deadline`` (a
    ``time.monotonic()`` time, e.g. from ``flow task run --timeout``) ends the wire's sends."""
    from shellflow.engine.transport import amqpwire

    broker = transport_url(settings.broker)
    if amqpwire.handles(broker):
        from shellflow.engine.transport.transports.wire import WireTransport

        return WireTransport(broker, deadline=deadline)
    from shellflow.engine.transport.celery_app import celery_conf
    from shellflow.engine.transport.transports.kombu_connection import KombuTransport

    return KombuTransport(broker, celery_conf(settings)["broker_transport_options"])
