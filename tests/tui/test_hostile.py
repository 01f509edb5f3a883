"""Every screen shows hostile stored text as text: never as markup, never as raw control bytes.

The values are written straight into the database (SQL, past every name rule), as rows stored
before any rule existed would be. Each holds markup that crashes a parser (``[/]``), markup
that would style or act (``[bold]``, ``[link=...]``, ``[@click=app.quit]``) and terminal
sequences (OSC 52 clipboard, clear screen, a C1 CSI, DEL). Each screen must show the text
with its control characters escaped (shellflow.printable) and must not crash.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import timedelta
from typing import Any

import pytest

from shellflow.printable import printable
from tests.conftest import REDIS_URL, require_service
from tests.tui.conftest import NOW, T0, settle, store_network

pytestmark = pytest.mark.asyncio
SIZE = (240, 60)  # wide enough that long names show whole


def hostile(tag: str) -> str:
    return (
        f"[/]{tag}[bold]b[link=https://e.x]l[/link][@click=app.quit]q"
        "\x1b]52;c;cHduZWQ=\x07\x1b[2J\x9b1m\x7f"
    )


# A call id is 36 characters; this one is markup and a title-setting sequence.
CALL = ("[/]\x1b]0;pwned\x07[b]" + "0" * 36)[:36]
FLOW = ("[@click=app.quit]\x1b[2J" + "f" * 36)[:36]
CHILD = "c" * 8 + "-0000-4000-8000-000000000000"


def screen_text(app: Any) -> str:
    """What the terminal would be sent for the current screen, as text lines."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


def assert_no_raw_controls(text: str) -> None:
    raw = {hex(ord(c)) for c in text if unicodedata.category(c) == "Cc" and c != "\n"}
    assert not raw, f"raw control characters reached the screen: {raw}"


@pytest.fixture
def hostile_db(cli: Any, sqlite_db: str) -> str:
    """The quick-start network renamed, and a failed call with its child, all hostile."""
    from sqlalchemy import insert, text

    from shellflow.model.calls import Call, Event, Log
    from shellflow.model.db import session_scope

    store_network(cli, sqlite_db)
    with session_scope(sqlite_db) as session:
        for table, column in (
            ("processor", "name"), ("processor", "gitrepo"), ("processor", "commit"),
            ("processor", "hostname"), ("processor", "requested_status"), ("socket", "name"),
            ("queue", "name"), ("plug", "name"), ("argument", "name"), ("node", "name"),
            ("node", "hostname"), ("agent", "name"), ("task", "name"),
        ):  # fmt: skip
            session.execute(
                text(f'UPDATE "{table}" SET "{column}" = :v || "{column}"'),
                {"v": hostile(f"{table}.{column}:")},
            )
        started = (T0 + timedelta(seconds=1)).replace(tzinfo=None)
        row = {
            "state": "failed", "started": started, "finished": started + timedelta(seconds=2),
            "hostname": hostile("host"), "worker": hostile("worker"), "tracking": FLOW,
            "owner": hostile("owner"),
        }  # fmt: skip
        session.execute(
            insert(Call.__table__).values(
                id=CALL, name=hostile("call"), error=hostile("error"),
                traceback="Traceback (most recent call last):\n" + hostile("traceback"),
                args=json.dumps({"args": [hostile("arg")], "kwargs": {"k": hostile("kw")}}),
                **row,
            )
        )  # fmt: skip
        session.execute(
            insert(Call.__table__).values(
                id=CHILD, name=hostile("child"), parent=CALL,
                result=json.dumps(hostile("result"), ensure_ascii=False), **row,
            )
        )  # fmt: skip
        session.execute(
            insert(Event.__table__).values(
                id="e" * 36, name=hostile("event"), note=hostile("note"), call_id=CALL,
                created=started,
            )
        )  # fmt: skip
        session.execute(
            insert(Log.__table__).values(
                id="l" * 36, oid=CALL, discriminator="call", text=hostile("printed"),
                source="stdout", created=started,
            )
        )  # fmt: skip
    return sqlite_db


async def test_calls_screen_shows_hostile_names_as_text(hostile_db, make_dashboard) -> None:
    from shellflow.tui.widgets import clip

    app = make_dashboard(hostile_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert {row.id for row in app.screen.page.rows} == {CALL, CHILD}
        shown = screen_text(app)
        assert_no_raw_controls(shown)
        assert str(clip(hostile("call"), 26, left=True)) in shown
        assert printable(hostile("host"))[:9] in shown
        await pilot.press("slash", *"[/]x[@click=app.quit]", "enter")  # a hostile filter
        await settle(pilot)
        assert "filter: [/]x[@click=app.quit]" in screen_text(app)
    assert app.return_code in (None, 0)


async def test_call_detail_shows_every_stored_field_as_text(hostile_db, make_dashboard) -> None:
    app = make_dashboard(hostile_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_call(CALL)
        await settle(pilot)
        assert type(app.screen).__name__ == "CallDetailScreen"
        shown = screen_text(app)
        assert_no_raw_controls(shown)
        for tag in ("call", "error", "traceback", "note", "printed", "owner", "event"):
            assert printable(hostile(tag)) in shown, tag
        assert printable(CALL) in shown and printable(FLOW) in shown
        assert "\\x1b]0;pwned\\x07" in shown  # the title sequence of the call id, written out
        await pilot.press("r")  # re-run: the confirmation names the socket and the command
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmDialog"
        confirm = screen_text(app)
        assert_no_raw_controls(confirm)
        assert printable(hostile("call")) in confirm
        await pilot.press("n")
        await pilot.pause()
        app.open_call(CHILD)  # a result, and a parent id that is markup
        await settle(pilot)
        shown = screen_text(app)
        assert_no_raw_controls(shown)
        assert printable(CALL) in shown
        assert "[@click=app.quit]q\\u001b]52" in shown  # the result, as JSON shows it


async def test_call_graph_shows_hostile_labels(hostile_db, make_dashboard) -> None:
    app = make_dashboard(hostile_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_graph(CHILD)
        await settle(pilot)
        tree = app.screen.query_one("#graph")
        root = tree.root.children[0]
        assert root.data["id"] == CALL and root.children[0].data["id"] == CHILD
        shown = screen_text(app)
        assert_no_raw_controls(shown)
        assert printable(hostile("call")) in shown and printable(hostile("child")) in shown
        assert f"flow run {printable(FLOW[:8])}" in shown


async def test_network_screen_shows_hostile_names(hostile_db, make_dashboard) -> None:
    app = make_dashboard(hostile_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        screen = app.screen
        assert type(screen).__name__ == "NetworkScreen"
        cells = {
            table: [str(cell) for cell in screen.query_one(f"#{table}").get_row_at(0)]
            for table in ("processors", "sockets", "plugs", "nodes", "agents")
        }
        assert cells["processors"][0] == printable(hostile("processor.name:") + "proc1")
        assert cells["processors"][2].startswith(printable(hostile("processor.requested_status:")))
        assert cells["sockets"][1] == cells["processors"][0]
        assert cells["plugs"][0] == printable(hostile("plug.name:") + "plug1")
        assert cells["nodes"][0] == printable(hostile("node.name:") + "node1")
        assert cells["agents"][1] == cells["nodes"][0]
        tabs = screen.query_one("#network-tabs")
        for table, row in cells.items():
            tabs.active = f"tab-{table}"
            await pilot.pause()
            shown = screen_text(app)
            assert_no_raw_controls(shown)
            assert row[0] in shown, table


async def test_notifications_and_command_log_show_text(hostile_db, make_dashboard) -> None:
    from shellflow.tui.app import LoggedCommand

    app = make_dashboard(hostile_db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        app._logged(LoggedCommand(NOW, hostile("command"), hostile("outcome"), True))
        for _ in range(100):  # the toast is mounted after a refresh or two
            await pilot.pause(0.05)
            if app.screen.query("Toast"):
                break
        await pilot.pause()
        shown = screen_text(app)
        assert_no_raw_controls(shown)
        assert printable(hostile("command"))[:40] in shown
        await pilot.press("L")
        await pilot.pause()
        shown = screen_text(app)
        assert_no_raw_controls(shown)
        logged = "".join(line.text for line in app.screen.query_one("RichLog").lines)  # wrapped
        assert printable(hostile("command")) in logged
        assert printable(hostile("outcome")) in logged
    assert app.return_code in (None, 0)


async def test_live_pane_shows_hostile_events_and_channel_names(hostile_db, make_dashboard) -> None:
    """An event whose room, socket and data are hostile, on the real Redis pub/sub; and a
    pane whose channel name (typed, or given with --channel) is markup."""
    require_service("redis")
    from datetime import UTC, datetime

    from shellflow.engine.records.events import Publisher, Stored

    room = hostile("room")
    publisher = Publisher(REDIS_URL, room)
    app = make_dashboard(hostile_db, redis=REDIS_URL, channels=["global", "[/][@click=app.quit]"])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await pilot.pause()
        every, odd = app.screen.panes()
        assert odd.pattern == "[/][@click=app.quit].*"
        for _ in range(300):
            await pilot.pause(0.05)
            if every.listening.is_set():
                break
        event = Stored("id-hostile", CALL, hostile("socket"), FLOW, "log", datetime.now(UTC),
                       hostile("data"))  # fmt: skip
        heard: list[str] = []
        for _ in range(300):  # a subscription starts in a worker thread: publish until heard
            publisher.publish([event])
            await pilot.pause(0.05)
            heard = [str(line.text) for line in every.query_one("RichLog").lines]
            if any(printable(hostile("data")) in line for line in heard):
                break
        line = next(line for line in heard if printable(hostile("data")) in line)
        assert printable(room) in line and printable(hostile("socket")) in line
        await pilot.press("slash", *"[/]", "enter")  # a filter that is markup
        await pilot.pause()
        shown = screen_text(app)
        assert_no_raw_controls(shown)
        assert "[/][@click=app.quit].*" in shown and "filter: [/]" in shown
    publisher.close()


async def test_call_detail_shows_a_record_no_parser_reads(hostile_db, make_dashboard) -> None:
    """Arguments and a result nested past the JSON parser (written by hand, or by an older
    version): the detail screen opens and shows their text."""
    from tests.hostile import write

    deep = "[" * 100_000 + "]" * 100_000
    unreadable = "d" * 8 + "-0000-4000-8000-000000000000"
    write(hostile_db, "INSERT INTO call (id, name, state, created, lastupdated, tracking, args,"
          " result) VALUES (:id, 's', 'finished', :now, :now, :id, :deep, :deep)",
          id=unreadable, now=T0.replace(tzinfo=None), deep=deep)  # fmt: skip
    app = make_dashboard(hostile_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_call(unreadable)
        await settle(pilot)
        assert type(app.screen).__name__ == "CallDetailScreen"
        assert "[[[[[[[[" in screen_text(app)


async def test_metrics_tab_shows_hostile_names(hostile_db, make_dashboard) -> None:
    """The stored sockets' rows, hostile names and all, with the figures of a metrics message
    about one of them on the real Redis pub/sub (its channel named after the processor)."""
    require_service("redis")
    from shellflow.engine.records.events import redis_client
    from shellflow.engine.records.metrics import message, summary
    from shellflow.tui.data.metrics import SAMPLES
    from shellflow.tui.widgets import clip
    from shellflow.tui.widgets.metrics import MetricsPanel, row_key
    from tests.tui.conftest import DO_SOMETHING

    room = hostile("processor.name:") + "proc1"
    socket = hostile("socket.name:") + DO_SOMETHING
    payload = message(room, socket, hostile("worker"), None, 1, "2026-01-02",
                      summary((4, 3, 1), [0.5], 9, 1.0))  # fmt: skip
    pub = redis_client(REDIS_URL)
    app = make_dashboard(hostile_db, redis=REDIS_URL)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        app.screen.query_one("#network-tabs").active = "tab-metrics"
        panel = app.screen.query_one(MetricsPanel)
        for _ in range(SAMPLES * 20):  # published until a sample has it
            pub.publish(f"{room}.metrics", payload)
            await pilot.pause(0.05)
            if panel.trends.get(room, socket):
                break
        for _ in range(20):
            await pilot.pause(0.05)
        table = panel.query_one("#metrics-table")
        assert table.row_count == 2 and panel.keys[0] == (room, socket)  # two stored sockets
        assert str(table.get_cell(row_key(room, socket), "depth")) == "9"
        assert str(table.get_cell(row_key(room, socket), "socket")) == str(
            clip(socket, 40, left=True)
        )
        shown = screen_text(app)
        assert_no_raw_controls(shown)
        assert printable(room)[:12] in shown and printable(socket)[-30:] in shown
    pub.close()
