"""What wraps a socket's function on every delivery: the redelivery cap and the retries.

**Redelivery cap and dead letters.** Messages are acknowledged late and rejected back to
their queue when their worker is lost, so a message that kills its worker (a crash in a C
extension, the OOM killer, ``os._exit``) would come back forever. shellflow counts the
redeliveries itself, in the call records: a message flagged ``redelivered`` writes a
``redelivered`` event, durably, before its function runs (``shellflow.engine.records.recorder``);
once a call has been redelivered more than :data:`MAX_REDELIVERIES` times it is not run
again: its message is copied, with the reason, to the socket's dead-letter queue
``<socket>.dead`` (a durable queue bound to the direct exchange ``shellflow.dead``), and the
call ends ``dead`` (a state of its own: its function never raised) with the reason as its
error, and its caller is answered with a ``DeadLettered`` error. Its ERROR plugs do not fire.
``flow task retry`` (``shellflow.services.calls.retry``) sends it again as a new call.

Why counted here rather than by the broker: RabbitMQ can count deliveries itself
(``x-delivery-limit`` with a dead-letter exchange), but only on quorum queues, which change
every socket queue's declaration (queues already declared as classic queues would have to
be deleted), disable the global QoS Celery uses and count a requeue on a consumer's warm
shutdown as a failed delivery; and the embedded default's Redis transport has no delivery
count at all. Counting in the records works the same on both transports, costs nothing on a
first delivery (only redeliveries write the extra event), and only counts runs that
started: a message handed back unrun on a warm shutdown does not come closer to the cap.

A redelivered call whose record already says ``finished`` (its worker was lost between the
record and the acknowledgement) is not run again: its recorded result is returned.

**Retries** follow the processor's ``retries`` and ``retrydelay``: a function that raises
is called again in the same delivery, up to ``retries`` more times, ``retrydelay`` seconds
apart; each retry is a ``retry`` event (and the call's state ``retry`` while it waits), and
the result's ``retries`` (Celery's result metadata) is the number of retries it took. The
message stays unacknowledged meanwhile, so a worker lost during a retry still gives the call
back to its queue. Retrying in place, rather than through Celery's ``Task.retry`` (a new
message with a countdown), keeps the call one message with one id on both transports and
needs no delayed delivery from the broker.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shellflow.engine.records.recorder import Recorder
from shellflow.engine.transport.dead_letters import DEAD_SUFFIX, dead_letter
from shellflow.model.listing import Reader
from shellflow.model.routes import SocketRoute
from shellflow.values import read_stored

MAX_REDELIVERIES = 5

log = logging.getLogger(__name__)


class DeadLettered(Exception):
    """The call was redelivered too often and was moved to its dead-letter queue."""


@dataclass(frozen=True)
class Policy:
    retries: int = 0
    retry_delay: float = 0.0
    max_redeliveries: int = MAX_REDELIVERIES


def policy_of(conn: Reader, processor: str) -> Policy:
    """The processor's retry settings (the redelivery cap is shellflow's own)."""
    rows = conn.query("SELECT retries, retrydelay FROM processor WHERE name = ?", [processor])
    retries, delay = rows[0] if rows else (None, None)
    return Policy(retries=max(0, int(retries or 0)), retry_delay=max(0.0, float(delay or 0)))


def _dead_letter(app: Any, route: SocketRoute, request: Any, args: Any, kwargs: Any,
                 reason: str) -> None:  # fmt: skip
    """Copy the call to ``<socket>.dead`` (persistent, confirmed) with why it is there."""
    body = {
        "id": request.id, "socket": route.name, "args": list(args), "kwargs": kwargs,
        "headers": {k: v for k, v in (request.headers or {}).items() if k.startswith("shellflow")},
        "reason": reason, "dead_at": time.time(),
    }  # fmt: skip
    dead_letter(app, route.name, body)


def guard(
    function: Callable[..., Any], route: SocketRoute, policy: Policy, recorder: Recorder
) -> Callable[..., Any]:
    """``function`` with the redelivery cap and the processor's retries around it."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        from celery import current_task

        task = current_task
        request = task.request
        call_id = request.id
        delivery = recorder.delivery(call_id)
        if delivery is not None and delivery.redelivered:
            if delivery.state == "finished":
                return read_stored(delivery.result)
            if delivery.redeliveries > policy.max_redeliveries:
                reason = (
                    f"call {call_id} of {route.name} was delivered "
                    f"{delivery.redeliveries + 1} times without finishing; moved to "
                    f"{route.name}{DEAD_SUFFIX}"
                )
                _dead_letter(task.app, route, request, args, kwargs, reason)
                recorder.event(call_id, "deadletter", reason[:2000])
                log.error("%s", reason)
                raise DeadLettered(reason)
        attempt = 0
        while True:
            try:
                result = function(*args, **kwargs)
            except Exception as exc:
                if attempt >= policy.retries:
                    raise
                attempt += 1
                request.retries = attempt
                note = f"Retry {attempt} of {policy.retries}: {type(exc).__name__}: {exc}"
                recorder.event(call_id, "retry", note[:2000], state="retry")
                if policy.retry_delay:
                    time.sleep(policy.retry_delay)
                continue
            if attempt:
                request.retries = attempt
            return result

    return guarded
