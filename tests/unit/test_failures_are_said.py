"""Failures on paths that must not fail a call are logged with their cause, never dropped."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from shellflow.engine.dataflow.plugs import Undelivered
from shellflow.model.routes import SocketRoute


def route(name: str) -> SocketRoute:
    return SocketRoute(
        name=name, processor="p", module="m", function="f", queue=name, qtype="direct",
        durable=True, processor_status="running", requested_status="running",
        socket_id=f"{name}-id", task_id=f"{name}-task",
    )  # fmt: skip


class BrokenRecords:
    """A recorder whose plug records cannot be written (a full disk, say)."""

    url = "sqlite://"

    def started(self, *args: Any, **kwargs: Any) -> None:
        return None

    def finished(self, *args: Any) -> None:
        return None

    def event(self, *args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    def undelivered(self, *args: Any) -> None:
        raise OSError(28, "No space left on device")


class Refused:
    """Plugs whose only target refuses every send."""

    def fire(self, *args: Any, **kwargs: Any) -> list[Undelivered]:
        return [
            Undelivered("plug1", route("target"), "planned-call", [1], {}, "ChannelError: 406",
                        dead_lettered=True),
        ]  # fmt: skip


def test_a_plug_failure_that_cannot_be_recorded_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from celery import Celery

    import shellflow.engine.dataflow.plugs as plugs
    from shellflow.engine.worker import runtime as worker

    monkeypatch.setattr(plugs, "plugs_for", lambda url: Refused())
    app = Celery("t", broker="memory://", backend="cache+memory://")
    worker._register(app, route("source"), lambda x: x * 2, BrokenRecords())  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="shellflow.engine.worker.runtime"):
        result = app.tasks["source"].apply(args=[21], task_id="call-1")
    assert result.get() == 42  # the source call's own outcome stands
    said = [r.getMessage() for r in caplog.records if r.name == "shellflow.engine.worker.runtime"]
    assert any("plug event was not recorded: OSError" in line for line in said), said
    assert any(
        "failed call planned-call of plug plug1 was not recorded: OSError" in line
        and "No space left on device" in line
        for line in said
    ), said


def test_a_stream_that_cannot_cancel_its_calls_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from types import SimpleNamespace

    import shellflow.engine.calls.outcomes as outcomes
    from shellflow.client.stream_results import ResultCollection

    def down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(outcomes, "revoke", down)
    stream = ResultCollection.__new__(ResultCollection)
    stream.settings = None
    stream.unfinished = {1: SimpleNamespace(call_id="c1", handle=None)}  # type: ignore[dict-item]
    with caplog.at_level(logging.WARNING, logger="shellflow.client.stream_results"):
        stream._cancel_unfinished("Cancelled: the stream was interrupted")
    assert "1 unfinished calls may not be cancelled: ConnectionRefusedError" in caplog.text
    assert stream.unfinished == {}
