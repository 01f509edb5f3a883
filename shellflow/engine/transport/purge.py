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

from typing import Any

DRAIN_MAX = 1_000_000  # messages read from one queue at most (a bound, not an expectation)


def drain(app: Any, queue: str) -> list[str]:
    """Remove every waiting message of broker queue ``queue``; the call ids they carried.

    A queue the broker does not know holds nothing (AMQP answers 404: no error here).
    """
    from kombu import Queue

    ids: list[str] = []
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
                call_id = _call_id(message)
                if call_id is not None:
                    ids.append(call_id)
        finally:
            _close(channel)
    return ids


def _call_id(message: Any) -> str | None:
    """The call id of a Celery task message (protocol 2: a header; 1: in the body)."""
    headers = getattr(message, "headers", None) or {}
    found = headers.get("id") or (message.properties or {}).get("correlation_id")
    return str(found) if found else None


def _close(channel: Any) -> None:
    import contextlib

    with contextlib.suppress(Exception):
        channel.close()
