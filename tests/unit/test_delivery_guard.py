"""The delivery guard in process: retries, the redelivery cap and its dead letters.

No broker, worker or database: the guarded function runs as a task applied in this
process (Celery's ``Task.apply``), the records are a stand-in that says what it was told,
and the dead letter lands in kombu's in-memory transport, read back from there. The same
behaviour on real brokers is covered by tests/engine/test_reliability.py.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from shellflow.engine.records.recorder import Delivery
from shellflow.engine.transport.dead_letters import dead_letter_queue
from shellflow.engine.worker.delivery import DeadLettered, Policy, guard
from shellflow.model.routes import SocketRoute


class Records:
    """What the guard asks of a recorder: the delivery's history, and events it writes."""

    def __init__(self, delivery: Delivery | None = None) -> None:
        self._delivery = delivery
        self.events: list[tuple[str, str, str | None]] = []

    def delivery(self, call_id: str) -> Delivery | None:
        return self._delivery

    def event(self, call_id: str, kind: str, note: str, state: str | None = None) -> None:
        self.events.append((kind, note, state))


def _route() -> SocketRoute:
    suffix = uuid.uuid4().hex[:8]
    return SocketRoute(
        name=f"sfguard.sock.{suffix}", processor="sfguard", module="m", function="f",
        queue=f"sfguard.q.{suffix}", qtype="direct", durable=True, processor_status="running",
        requested_status="running", socket_id="s", task_id="t",
    )  # fmt: skip


def _run(
    function: Any, records: Records, policy: Policy, *args: Any
) -> tuple[Any, Any, str, SocketRoute]:
    """Apply ``guard(function)`` as a task in this process; (app, result, call id, route)."""
    from celery import Celery

    app = Celery("sfguard", broker="memory://", backend="cache+memory://")
    route = _route()
    guarded = guard(function, route, policy, records)  # type: ignore[arg-type]
    task = app.task(name=route.name, bind=False)(guarded)
    call_id = str(uuid.uuid4())
    return app, task.apply(args=list(args), task_id=call_id), call_id, route


def test_a_raising_function_is_retried_in_place_with_an_event_per_retry() -> None:
    tries: list[int] = []

    def flaky(x: int) -> int:
        tries.append(x)
        if len(tries) < 3:
            raise ValueError(f"not yet {len(tries)}")
        return x * 2

    records = Records()
    _, result, _, _ = _run(flaky, records, Policy(retries=2), 21)
    assert result.get() == 42 and tries == [21, 21, 21]
    assert [(kind, state) for kind, _, state in records.events] == [
        ("retry", "retry"), ("retry", "retry"),
    ]  # fmt: skip
    assert "Retry 1 of 2: ValueError: not yet 1" in records.events[0][1]


def test_retries_end_with_the_functions_own_error() -> None:
    def broken() -> None:
        raise KeyError("gone")

    records = Records()
    _, result, _, _ = _run(broken, records, Policy(retries=1))
    with pytest.raises(KeyError):
        result.get()
    assert [kind for kind, _, _ in records.events] == ["retry"]


def test_a_call_redelivered_past_the_cap_is_dead_lettered_not_run() -> None:
    ran: list[int] = []
    policy = Policy(max_redeliveries=2)
    records = Records(Delivery("c", redelivered=True, redeliveries=3, state="running"))

    def record(x: int) -> None:
        ran.append(x)

    app, result, call_id, route = _run(record, records, policy, 7)
    with pytest.raises(DeadLettered, match="delivered 4 times without finishing"):
        result.get()
    assert ran == []
    assert [kind for kind, _, _ in records.events] == ["deadletter"]
    with app.connection() as conn:
        message = dead_letter_queue(route.name)(conn.channel()).get(no_ack=True)
    assert message is not None, "nothing in the dead-letter queue"
    body = json.loads(message.body) if isinstance(message.body, (str, bytes)) else message.body
    assert (body["id"], body["socket"], body["args"]) == (call_id, route.name, [7])
    assert "delivered 4 times" in body["reason"]


def test_a_redelivered_call_that_had_finished_returns_its_recorded_result() -> None:
    ran: list[int] = []
    records = Records(Delivery("c", redelivered=True, redeliveries=1, state="finished",
                               result='{"sum": 3}'))  # fmt: skip

    def record() -> None:
        ran.append(1)

    _, result, _, _ = _run(record, records, Policy())
    assert result.get() == {"sum": 3} and ran == [] and records.events == []
