"""What the main screens look like at 80x24, with fixed data and a pinned clock.

Update after an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the report it writes before accepting it.
"""

from __future__ import annotations

from typing import Any

from tests.tui.conftest import settle


def test_calls_screen(filled_db, make_dashboard, snap_compare) -> None:
    url, _ = filled_db
    assert snap_compare(make_dashboard(url), run_before=settle)


def test_calls_filtered_and_sorted(filled_db, make_dashboard, snap_compare) -> None:
    url, _ = filled_db

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("slash", *"do_this", "enter", "4")
        await settle(pilot)

    assert snap_compare(make_dashboard(url), run_before=run_before)


def test_call_detail_of_a_failed_call(filled_db, make_dashboard, snap_compare) -> None:
    url, ids = filled_db

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.open_call(ids["b"])
        await settle(pilot)

    assert snap_compare(make_dashboard(url), run_before=run_before)


def test_call_graph(filled_db, make_dashboard, snap_compare) -> None:
    url, ids = filled_db

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.open_graph(ids["c"])
        await settle(pilot)

    assert snap_compare(make_dashboard(url), run_before=run_before)


def test_network_screen(filled_db, make_dashboard, snap_compare) -> None:
    url, _ = filled_db

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)

    assert snap_compare(make_dashboard(url), run_before=run_before)


def test_confirmation_shows_the_flow_command(filled_db, make_dashboard, snap_compare) -> None:
    url, _ = filled_db

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("P")
        await pilot.pause()

    assert snap_compare(make_dashboard(url), run_before=run_before)


def test_help(filled_db, make_dashboard, snap_compare) -> None:
    url, _ = filled_db

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(make_dashboard(url), run_before=run_before)
