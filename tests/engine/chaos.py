"""The chaos processor (``examples/processors/pyfi/processors/chaos.py``) and helpers for
tests that kill, stop and restart things: the Python client, polling, exactly-once checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import Deployment, module_network
from tests.waiting import poll

FUNCTIONS = ("flaky", "slow", "crash", "echo")
ROWS = "SELECT count(*), count(DISTINCT id) FROM call WHERE name = ?"
FINISHED = "SELECT count(*) FROM call WHERE name = ? AND state = 'finished'"
EVENTS_NAMED = (
    "SELECT count(*) FROM event e JOIN call c ON c.id = e.call_id WHERE c.name = ? AND e.name = ?"
)


def chaos_network(d: Deployment, retries: int = 2) -> dict[str, str]:
    """A processor serving ``pyfi.processors.chaos`` with ``retries`` and no retry delay."""
    return module_network(d, "chaos", FUNCTIONS, "-c", "2", "--retries", str(retries),
                          "--retry-delay", "0")  # fmt: skip


class Client:
    """The Python client (``shellflow.engine.calls.sender``) on a deployment's settings."""

    def __init__(self, d: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
        from shellflow.config import load_settings

        for key, value in d.env.items():
            monkeypatch.setenv(key, value)
        self.settings = load_settings()

    def send(self, socket: str, *args: Any, **kwargs: Any) -> Any:
        from shellflow.engine.calls.sender import send

        return send(self.settings, socket, list(args), kwargs)

    def wait(self, sent: Any, timeout: float = 120) -> Any:
        from shellflow.engine.calls.sender import wait

        return wait(sent, timeout)


def finished(d: Deployment, socket: str) -> int:
    return int(d.query(FINISHED, (socket,))[0][0])


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def assert_exactly_once(d: Deployment, socket: str, sent: list[Any]) -> None:
    """One call row per call id sent, each finished, and no other row.

    A result can reach its caller a moment before its record is committed (the commit is
    awaited before the message is acknowledged), hence the short poll.
    """
    ids = {s.call_id for s in sent}
    poll(lambda: finished(d, socket) >= len(ids), timeout=30)
    rows = d.query("SELECT id, state FROM call WHERE name = ?", (socket,))
    assert len(rows) == len(ids), f"{len(rows)} call rows for {len(ids)} calls"
    assert {r[0] for r in rows} == ids
    assert {r[1] for r in rows} == {"finished"}
