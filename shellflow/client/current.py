"""Which call a function is running as: the key for making its effect happen once.

Delivery is at least once (``docs/engine.md``, "What at-least-once means for your
function"): a call whose worker died before acknowledging it runs again, with the same id.
A function whose effect must not repeat (a payment, an e-mail, an append) keys that effect
by :func:`current_call_id`, which a redelivery or a schedule's resend keeps and a
``flow task retry`` (a new call, by choice) does not.
"""

from __future__ import annotations


def current_call_id() -> str | None:
    """The id of the call this process is running now (as ``flow ls call --id`` shows it);
    None outside a call. Celery is imported only if this process already did: a function
    run by hand, not by a worker, pays nothing."""
    import sys

    if "celery" not in sys.modules:
        return None
    from celery import current_task

    request = getattr(current_task, "request", None)
    found = getattr(request, "id", None)
    return str(found) if found else None
