"""The Live screen on the real Redis pub/sub: channels side by side, pause, resume, filter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import REDIS_URL, require_service
from tests.tui.conftest import settle

pytestmark = pytest.mark.asyncio
REDIS = REDIS_URL


def lines(pane: Any) -> list[str]:
    return [str(line.text) for line in pane.query_one("RichLog").lines]


async def until(pilot: Any, check: Any, what: str) -> None:
    for _ in range(300):
        await pilot.pause(0.05)
        if check():
            return
    raise AssertionError(f"timed out waiting for {what}")


async def test_channels_side_by_side_pause_resume_filter(sqlite_db, make_dashboard) -> None:
    require_service("redis")
    from shellflow.engine.records.events import Publisher, Stored

    publishers = {room: Publisher(REDIS, room) for room in ("procA", "procB")}
    app = make_dashboard(sqlite_db, redis=REDIS, channels=["procA", "global"])
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("l")
        await pilot.pause()
        screen = app.screen
        own, every = screen.panes()
        assert [own.pattern, every.pattern] == ["procA.*", "global"]

        def publish(room: str, data: str) -> None:
            event = Stored(f"id-{data}", "call1", "sockA", "flow1", "log", datetime.now(UTC), data)
            publishers[room].publish([event])

        await until(pilot, lambda: own.listening.is_set() and every.listening.is_set(), "both")
        # Subscriptions start in worker threads: publish until both panes have heard one.
        await until(pilot, lambda: publish("procA", "first") or (lines(own) and lines(every)),
                    "the first event")  # fmt: skip
        assert "procA log log sockA first" in lines(own)[0]
        publish("procB", "other")
        await until(pilot, lambda: any("other" in line for line in lines(every)), "global")
        assert not any("other" in line for line in lines(own))

        await pilot.press("space")  # pause: events are held, not shown
        seen = len(lines(own))
        publish("procA", "while paused")
        await until(pilot, lambda: len(own.held) == 1, "a held event")
        assert len(lines(own)) == seen
        await pilot.press("space")  # resume: the held event shows
        await pilot.pause()
        assert "while paused" in lines(own)[-1]

        await pilot.press("slash", *"keep", "enter")
        publish("procA", "drop me")
        publish("procA", "keep me")
        await until(pilot, lambda: "keep me" in lines(own)[-1], "the filtered event")
        assert not any("drop me" in line for line in lines(own))

        await pilot.press("a", *"procC.error", "enter")
        await pilot.pause()
        assert [p.pattern for p in screen.panes()][-1] == "procC.error"
        await pilot.press("x")
        await pilot.pause()
        assert len(screen.panes()) == 2
    for publisher in publishers.values():
        publisher.close()
