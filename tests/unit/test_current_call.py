"""A function learns the id of the call it runs as, the key for an effect that must happen once."""

from __future__ import annotations

import shellflow


def test_outside_a_call_there_is_no_call_id() -> None:
    assert shellflow.current_call_id() is None


def test_inside_a_call_its_id_is_the_call_id() -> None:
    from celery import Celery

    app = Celery("current-call-test", broker="memory://", backend="cache+memory://")

    @app.task(name="current.t")
    def which() -> str | None:
        return shellflow.current_call_id()

    assert which.apply(task_id="call-7f3e").get() == "call-7f3e"
    assert shellflow.current_call_id() is None  # not kept past the call
