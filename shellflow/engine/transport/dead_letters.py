"""Dead letters: calls set aside in ``<socket>.dead`` with why, for a person to look at.

A call that kept killing its worker (``shellflow.engine.worker.delivery``) and a plug's
call that could not be delivered (``shellflow.engine.dataflow.plugs``) end here; both
publish through :func:`dead_letter`, so every dead letter has one queue and one form.
"""

from __future__ import annotations

from typing import Any

DEAD_EXCHANGE = "shellflow.dead"
DEAD_SUFFIX = ".dead"


def dead_letter_queue(socket: str) -> Any:
    """The durable ``<socket>.dead`` queue, bound to the dead-letter exchange."""
    from kombu import Exchange, Queue

    exchange = Exchange(DEAD_EXCHANGE, type="direct", durable=True)
    name = socket + DEAD_SUFFIX
    return Queue(name, exchange=exchange, routing_key=name, durable=True, auto_delete=False)


def dead_letter(app: Any, socket: str, body: dict[str, Any]) -> None:
    """Publish ``body`` to ``<socket>.dead`` (persistent, confirmed); raises if it cannot."""
    queue = dead_letter_queue(socket)
    with app.producer_or_acquire() as producer:
        producer.publish(
            body, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue],
            serializer="json", delivery_mode=2, retry=True,
        )  # fmt: skip


DEAD_SCAN_MAX = 10_000  # dead letters read per socket at most when taking some out


def take_dead_letters(app: Any, socket: str, call_ids: set[str]) -> int:
    """Take the dead letters of ``call_ids`` out of ``<socket>.dead``; how many were taken.

    A retried call's copy has done its job: left there, ``<socket>.dead`` would only grow.
    Each message is read without acknowledgement; those of ``call_ids`` are acknowledged
    (gone), and closing the channel hands every other one back to the queue (RabbitMQ puts
    them back where they were; kombu's Redis transport restores them from its unacked
    hash). At most :data:`DEAD_SCAN_MAX` messages are read: what lies past them stays, and
    the next retry reads from the front again.
    """
    if not call_ids:
        return 0
    import contextlib

    queue = dead_letter_queue(socket)
    taken = 0
    with app.connection_for_write() as connection:
        channel = connection.channel()
        try:
            bound = queue(channel)
            bound.declare()
            for _ in range(DEAD_SCAN_MAX):
                message = bound.get(no_ack=False)
                if message is None:
                    break
                body = message.decode() if message.body else None
                if isinstance(body, dict) and str(body.get("id")) in call_ids:
                    message.ack()
                    taken += 1
                    if taken == len(call_ids):
                        break
        finally:
            with contextlib.suppress(Exception):
                channel.close()
    return taken
