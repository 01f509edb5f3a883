"""The dashboard on both deployments with a real worker: calls appear live, their events
stream on the Live screen, the detail shows result and printed lines, and a re-run runs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.conftest import Deployment, deployment, network  # noqa: F401 (fixtures)
from tests.tui.conftest import settle

pytestmark = pytest.mark.asyncio


async def until(pilot: Any, check: Any, what: str, timeout: float = 90.0) -> None:
    for _ in range(int(timeout / 0.1)):
        await pilot.pause(0.1)
        if check():
            return
    raise AssertionError(f"timed out waiting for {what}")


async def test_calls_live_detail_and_rerun_with_a_worker(
    deployment: Deployment,  # noqa: F811
    network: dict[str, str],  # noqa: F811
) -> None:
    from shellflow.config import load_settings
    from shellflow.tui.app import make_app

    d = deployment
    d.start_worker(network["processor"])
    settings = load_settings(environ=d.env)
    app = make_app(settings, channels=[network["processor"]], refresh_seconds=0.3)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("l")  # subscribe first, then call (no settle: listeners never end)
        await pilot.pause()
        pane = app.screen.panes()[0]
        await until(pilot, pane.listening.is_set, "the subscription")
        assert d.ok("task", "run", "-s", network["do_something"], "--data", '"hi"').stdout == (
            "TEXT:hi\n"
        )

        def heard() -> list[str]:
            return [str(line.text) for line in pane.query_one("RichLog").lines]

        # The result and the printed line are published by one commit, in no promised order.
        await until(pilot, lambda: any("TEXT:hi" in line for line in heard()), "the result")
        await until(pilot, lambda: any("Do something: hi" in line for line in heard()), "output")

        await pilot.press("c")
        calls = app.screen
        await until(pilot, lambda: calls.page is not None and len(calls.page.rows) == 1, "the call")
        assert calls.page.rows[0].state == "finished"
        await pilot.press("enter")
        await until(pilot, lambda: getattr(app.screen, "rendered", None) is not None, "detail")
        detail = app.screen
        assert detail.call["result"] == "TEXT:hi"
        await pilot.press("r", "y")  # the same arguments again: the worker runs a second call
        await until(pilot, lambda: len(app.command_log) == 1, "the re-run")
        assert not app.command_log[0].failed, app.command_log[0].outcome
        await pilot.press("escape")

        def both_done() -> bool:
            rows = calls.page.rows
            return len(rows) == 2 and {r.state for r in rows} == {"finished"}

        await until(pilot, both_done, "the second call")
