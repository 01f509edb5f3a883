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
