"""How a stream waits for a lost service (``shellflow.client.stream_outage``): one line when
it is lost, one when it is back, and GaveUp (exit 6) once the grace time has passed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from shellflow.client.stream_outage import GaveUp, Outage
from shellflow.errors import ExitCode, ServiceUnavailable

SETTINGS = SimpleNamespace(broker="amqp://guest:secret@127.0.0.1:1//", backend="redis://x:1/0")


def test_a_lost_service_is_said_once_and_its_return_once() -> None:
    said: list[str] = []
    outage = Outage(SETTINGS, grace=60, say=said.append)
    lost = ServiceUnavailable("broker", SETTINGS.broker, "connection refused")
    outage.recovered("broker")  # it answered once, as a stream's first publish does
    outage.failed(lost)
    outage.failed(lost)
    assert said == ["flow: broker unavailable at amqp://guest:***@127.0.0.1:1//: connection"
                    " refused; reconnecting (for up to 60 s)"]  # fmt: skip
    outage.recovered("result backend")  # not lost: nothing to say
    outage.recovered("broker")
    outage.recovered("broker")
    assert len(said) == 2 and said[1].startswith("flow: the broker answers again after ")


def test_a_service_down_past_the_grace_time_gives_up_with_exit_6() -> None:
    said: list[str] = []
    outage = Outage(SETTINGS, grace=0.2, say=said.append)
    lost = ServiceUnavailable("result backend", SETTINGS.backend, "connection refused")
    outage.recovered("result backend")
    with pytest.raises(GaveUp) as caught:
        for _ in range(1000):  # each wait is bounded by the grace time left
            outage.failed(lost)
    assert caught.value.exit_code == ExitCode.UNAVAILABLE
    assert "(for more than 0.2 s)" in str(caught.value)
    assert len(said) == 1


def test_a_service_never_reached_is_said_at_once_not_waited_for() -> None:
    """A mistyped URL or a server not started: exit 6 at once, as for a one-shot call."""
    said: list[str] = []
    outage = Outage(SETTINGS, grace=60, say=said.append)
    lost = ServiceUnavailable("broker", SETTINGS.broker, "connection refused")
    with pytest.raises(ServiceUnavailable) as caught:
        outage.failed(lost)
    assert caught.value is lost and said == []
