"""The Calls screen: newest first, detail on Enter, filter, sort, pages, live refresh."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui.conftest import call_id, settle

pytestmark = pytest.mark.asyncio


def rows(app: Any) -> list[str]:
    screen = app.screen
    return [row.id for row in screen.page.rows] if screen.page else []


async def test_newest_first_and_enter_opens_detail(filled_db, make_dashboard) -> None:
    url, _ = filled_db
    app = make_dashboard(url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert rows(app)[:3] == [call_id(25), call_id(24), call_id(23)]
        assert "calls 1-25 of 25" in str(app.screen.query_one("#calls-info").render())
        await pilot.press("down", "enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "CallDetailScreen"
        assert app.screen.call_id == call_id(24)
        await pilot.press("escape")
        assert type(app.screen).__name__ == "CallsScreen"


async def test_both_databases_list_detail_graph_and_network(cli, initialised_db, make_dashboard):
    """The same screens on SQLite and on PostgreSQL (the distributed deployment's database)."""
    from tests.tui.conftest import store_calls, store_network

    store_network(cli, initialised_db)
    ids = store_calls(initialised_db)
    app = make_dashboard(initialised_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert [row.id for row in app.screen.page.rows][:2] == [call_id(25), call_id(24)]
        assert "hosts 1 · queues 1 · processors 1/1" in str(
            app.screen.query_one("#status-bar").render()
        )
        app.open_graph(ids["c"])
        await settle(pilot)
        assert app.screen.query_one("#graph").root.children[0].data["id"] == ids["root"]
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.call is not None and app.screen.call["id"] == ids["c"]
        await pilot.press("n")
        await settle(pilot)
        assert str(app.screen.query_one("#processors").get_row_at(0)[0]) == "proc1"
