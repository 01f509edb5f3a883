"""Each screen driven by keys (Pilot) against a real SQLite database of fixed calls."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui.conftest import DO_THIS, call_id, settle

pytestmark = pytest.mark.asyncio


def text_of(app: Any, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def plain(renderable: Any) -> str:
    import io

    from rich.console import Console

    console = Console(width=120, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def listed(app: Any) -> list[str]:
    return [row.id for row in app.screen.page.rows]


async def test_filter_by_state_socket_and_text(filled_db, make_dashboard) -> None:
    url, ids = filled_db
    app = make_dashboard(url)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("slash", *"failed", "enter")
        await settle(pilot)
        assert listed(app) == [ids["b"]]
        await pilot.press("slash", *(["backspace"] * 20), *f"socket:{DO_THIS}", "enter")
        await settle(pilot)
        assert listed(app) and all(r.socket == DO_THIS for r in app.screen.page.rows)
        await pilot.press("escape")  # clears the filter
        await settle(pilot)
        assert len(listed(app)) == 25
        await pilot.press("slash", *"00000003", "enter")
        await settle(pilot)
        assert listed(app) == [ids["b"]]


async def test_sort_by_column_and_reverse(filled_db, make_dashboard) -> None:
    url, _ = filled_db
    app = make_dashboard(url)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("4")  # duration, longest first
        await settle(pilot)
        assert listed(app)[0] == call_id(25)
        await pilot.press("4")  # shortest first
        await settle(pilot)
        assert listed(app)[0] == call_id(1)
        await pilot.press("2")  # state, a to z
        await settle(pilot)
        assert app.screen.page.rows[0].state == "failed"
        assert "sort state ↑" in text_of(app, "#calls-info")


async def test_pages_by_keyset_as_the_cursor_moves(cli, sqlite_db, make_dashboard) -> None:
    from tests.tui.conftest import store_calls

    store_calls(sqlite_db, extra=246)  # 250 calls: pages of 100, 100, 50
    app = make_dashboard(sqlite_db)
    async with app.run_test() as pilot:
        await settle(pilot)
        assert listed(app)[0] == call_id(250) and len(listed(app)) == 100
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert listed(app)[0] == call_id(150)
        assert "calls 101-200 of 250" in text_of(app, "#calls-info")
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert len(listed(app)) == 50
        await pilot.press("right_square_bracket")  # no page after the last: stays
        await settle(pilot)
        assert listed(app)[-1] == call_id(1)
        await pilot.press("up")  # at the first row: the previous page, cursor on its last row
        await settle(pilot)
        assert listed(app)[0] == call_id(150)
        assert app.screen.query_one("#calls-table").cursor_row == 99
        await pilot.press("down")  # at the last row: the next page again
        await settle(pilot)
        assert listed(app)[0] == call_id(50)


async def test_live_refresh_shows_new_calls(cli, sqlite_db, make_dashboard) -> None:
    from tests.tui.conftest import store_calls

    app = make_dashboard(sqlite_db, refresh_seconds=0.2)
    async with app.run_test() as pilot:
        await settle(pilot)
        assert listed(app) == []
        store_calls(sqlite_db, extra=3)
        for _ in range(100):
            await pilot.pause(0.1)
            if len(listed(app)) == 7:
                break
        assert listed(app)[0] == call_id(7)


async def test_call_detail_shows_arguments_result_events_logs(filled_db, make_dashboard) -> None:
    url, ids = filled_db
    app = make_dashboard(url)
    async with app.run_test() as pilot:
        await settle(pilot)
        app.open_call(ids["root"])
        await settle(pilot)
        shown = plain(app.screen.rendered)
        for part in ('"sum": 3', '"args": [1]', "received note", "postrun", "hello from do_this",
                     "(none: a root call)", "Log lines (1)"):  # fmt: skip
            assert part in shown, part
        app.open_call(ids["b"])
        await settle(pilot)
        shown = plain(app.screen.rendered)
        assert "ValueError: no" in shown and "Traceback (most recent call last)" in shown
        await pilot.press("p")  # its parent: the root
        await settle(pilot)
        assert app.screen.call_id == ids["root"]


async def test_call_graph_tree_and_jump(filled_db, make_dashboard) -> None:
    url, ids = filled_db
    app = make_dashboard(url)
    async with app.run_test() as pilot:
        await settle(pilot)
        app.open_graph(ids["c"])
        await settle(pilot)
        tree = app.screen.query_one("#graph")
        root = tree.root.children[0]
        assert root.data["id"] == ids["root"]
        assert [child.data["id"] for child in root.children] == [ids["a"], ids["b"]]
        assert "failed" in str(root.children[1].label)
        assert tree.cursor_node.data["id"] == ids["c"]  # the call it was opened from
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "CallDetailScreen"
        assert app.screen.call_id == ids["c"]


async def test_network_screen_lists_everything(filled_db, make_dashboard) -> None:
    url, _ = filled_db
    app = make_dashboard(url)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        screen = app.screen
        assert type(screen).__name__ == "NetworkScreen"
        processors = screen.query_one("#processors")
        assert str(processors.get_row_at(0)[0]) == "proc1"  # cells are Text, never markup
        assert str(processors.get_row_at(0)[1]) == "running"
        assert screen.query_one("#sockets").row_count == 2
        assert str(screen.query_one("#plugs").get_row_at(0)[0]) == "plug1"
        node = [str(cell) for cell in screen.query_one("#nodes").get_row_at(0)]
        assert node[3] == "0.50" and node[4] == "12.0s ago"
        assert str(screen.query_one("#agents").get_row_at(0)[4]) == "12.0s ago"
        bar = str(screen.query_one("#status-bar").render())
        assert "hosts 1 · queues 1 · processors 1/1" in bar


async def test_network_screen_says_why_queue_depths_are_unknown(filled_db, make_dashboard) -> None:
    """A broker that cannot be asked: the network still shows, each depth "?", and the
    status bar says why (not silently empty)."""
    url, _ = filled_db
    app = make_dashboard(url, redis="redis://127.0.0.1:1/0", depths=True)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        sockets = app.screen.query_one("#sockets")
        assert sockets.row_count == 2
        assert [str(sockets.get_row_at(n)[4]) for n in range(2)] == ["?", "?"]
        bar = str(app.screen.query_one("#status-bar").render())
        assert "broker unavailable at redis://127.0.0.1:1/0" in bar


async def test_help_and_palette_and_quit(filled_db, make_dashboard) -> None:
    url, _ = filled_db
    app = make_dashboard(url)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpDialog"
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "CallsScreen"
        await pilot.press("colon")
        await pilot.pause()
        assert type(app.screen).__name__ == "CommandPalette"
        await pilot.press(*"Network", "enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "NetworkScreen"
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_unreachable_database_is_shown_and_retried(tmp_path, make_dashboard) -> None:
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    app = make_dashboard(url, refresh_seconds=0.2)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.pause(0.5)
        bar = str(app.screen.query_one("#status-bar").render())
        assert "database unavailable" in bar and "retrying" in bar
        from shellflow.model import schema

        schema.upgrade(url)
        for _ in range(100):
            await pilot.pause(0.1)
            if "queues 0" in str(app.screen.query_one("#status-bar").render()):
                break
        assert "queues 0" in str(app.screen.query_one("#status-bar").render())
