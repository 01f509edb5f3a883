"""The wire carries JSON only: a pickled message is refused, never executed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.conftest import Deployment


class _Evil:
    """Unpickling this would create a file: the proof that pickle was honoured."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def test_pickled_message_is_rejected(
    deployment: Deployment, network: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shellflow.config import load_settings
    from shellflow.engine.transport.celery_app import make_app
    from shellflow.engine.transport.routing import kombu_queue
    from shellflow.model.listing import reader
    from shellflow.model.routes import socket_route

    d = deployment
    for key, value in d.env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    with reader(settings.db) as conn:
        route = socket_route(conn, network["do_this"])
    app = make_app(settings)
    queue = kombu_queue(route)
    marker = Path(d.env["SHELLFLOW_HOME"]) / "pickle-was-executed"
    app.send_task(
        route.name, args=[_Evil(marker)], serializer="pickle", queue=queue,
        exchange=queue.exchange, routing_key=route.name, declare=[queue],
    )  # fmt: skip
    d.start_worker(network["processor"])
    # Calls are taken in order by one worker process: once this one is done, the pickled
    # message before it has been dealt with.
    assert (
        d.ok("task", "run", "-s", network["do_this"], "--data", '"after"').stdout
        == "Do this: after\n"
    )
    assert not marker.exists()
    recorded = d.wait_rows("SELECT id FROM call WHERE name = ?", (network["do_this"],), 1)
    assert len(recorded) == 1
    assert "pickle" in d.worker_log().lower()
