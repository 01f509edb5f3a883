"""The dashboard reads and acts with the rights of whoever looks, as the CLI does.

Its principal is resolved once (``shellflow.model.access.current_principal``, replaced here
by bob with a few rights): each screen's read is checked before it touches the database, a
refusal is shown in the status bar (not retried), and an action refused by its service is
logged as failed with the refusal, changing nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui.conftest import call_id, settle
from tests.tui.test_actions import open_network, processor, wait_for_log

pytestmark = pytest.mark.asyncio


def as_bob(monkeypatch: pytest.MonkeyPatch, *rights: str) -> None:
    from shellflow.model import access

    bob = access.Principal("bob", rights=frozenset(rights))
    monkeypatch.setattr(access, "current_principal", lambda *_a, **_k: bob)


def rows(app: Any) -> list[str]:
    page = getattr(app.screen, "page", None)
    return [row.id for row in page.rows] if page else []


async def test_without_read_call_the_calls_screen_shows_the_refusal_and_no_call(
    filled_db: Any, make_dashboard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = filled_db
    as_bob(monkeypatch, "LS_PROCESSORS", "READ_PROCESSOR")
    app = make_dashboard(url)
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        assert rows(app) == []
        assert app.problem == "bob lacks the READ_CALL right on calls"  # not "retrying"
        app.open_call(call_id(3))  # as a link to a call would
        await settle(pilot)
        assert app.problem == f"bob lacks the READ_CALL right on call {call_id(3)}"


async def test_read_call_shows_calls_but_the_network_needs_its_own_right(
    filled_db: Any, make_dashboard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = filled_db
    as_bob(monkeypatch, "READ_CALL")
    app = make_dashboard(url)
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        assert rows(app)[:2] == [call_id(25), call_id(24)], app.problem
        assert app.problem == ""
        await open_network(pilot)
        assert app.problem == "bob lacks the LS_PROCESSORS right on the network"


async def test_an_action_without_its_right_is_logged_refused_and_changes_nothing(
    filled_db: Any, make_dashboard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = filled_db
    as_bob(monkeypatch, "READ_CALL", "LS_PROCESSORS", "RESUME_PROCESSOR")
    before = processor(url)
    app = make_dashboard(url)
    async with app.run_test(size=(100, 24)) as pilot:
        await open_network(pilot)
        await pilot.press("P", "y")
        await wait_for_log(pilot, 1)
        logged = app.command_log[0]
        assert logged.command == "flow proc pause -n proc1" and logged.failed
        assert "bob lacks the PAUSE_PROCESSOR right on proc1" in logged.outcome
    assert processor(url) == before


async def test_the_live_screen_without_listen_says_so_and_never_subscribes(
    filled_db: Any, make_dashboard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = filled_db
    as_bob(monkeypatch, "READ_CALL")
    app = make_dashboard(url)
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        titles = [str(t.render()) for t in app.screen.query(".channel-title")]
        assert titles and all("bob lacks the LISTEN right" in t for t in titles), titles
        assert not any(pane.listening.is_set() for pane in app.screen.query("ChannelPane"))


def link_calls_and_add_proc2(cli: Any, url: str) -> str:
    """Each call linked to its socket (by name), and the newest one made proc2's."""
    from shellflow.model.listing import writer
    from tests.tui.conftest import MODULE, REPO

    cli.ok("-d", url, "add", "processor", "-n", "proc2", "-g", REPO, "-m", MODULE)
    cli.ok("-d", url, "add", "socket", "-n", "other.task", "-q", "pyfi.queue1", "-pn", "proc2",
           "-t", "do_other")  # fmt: skip
    with writer(url) as conn:
        conn.execute("UPDATE call SET name = 'other.task' WHERE id = ?", [call_id(25)])
        conn.execute("UPDATE call SET socket_id = (SELECT s.id FROM socket s"
                     " WHERE s.name = call.name)")  # fmt: skip
    return call_id(25)


def as_bob_on(monkeypatch: pytest.MonkeyPatch, **scoped: set[str]) -> None:
    from shellflow.model import access

    bob = access.Principal("bob", scoped={r: frozenset(on) for r, on in scoped.items()})
    monkeypatch.setattr(access, "current_principal", lambda *_a, **_k: bob)


async def test_read_call_on_one_processor_shows_its_calls_alone(
    cli: Any, filled_db: Any, make_dashboard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = filled_db
    other = link_calls_and_add_proc2(cli, url)
    as_bob_on(monkeypatch, READ_CALL={"proc1"})
    app = make_dashboard(url)
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        assert rows(app)[:2] == [call_id(24), call_id(23)], app.problem  # not proc2's 25
        assert other not in rows(app) and app.problem == ""
        app.open_call(other)  # as a link to proc2's call would
        await settle(pilot)
        assert app.problem == f"bob lacks the READ_CALL right on call {other}"
        app.open_call(call_id(24))
        await settle(pilot)
        assert app.screen.call is not None and app.screen.call["id"] == call_id(24)


async def test_listen_on_one_processor_subscribes_to_it_alone(
    filled_db: Any, make_dashboard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import REDIS_URL, require_service
    from tests.tui.test_live import until

    require_service("redis")
    url, _ = filled_db
    as_bob_on(monkeypatch, READ_CALL={"proc1"}, LISTEN={"proc1"})
    app = make_dashboard(url, redis=REDIS_URL, channels=["proc1", "global"])
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await pilot.pause()
        own, every = app.screen.panes()
        await until(pilot, lambda: own.listening.is_set(), "proc1's subscription")
        title = str(every.query_one(".channel-title").render())
        assert "bob lacks the LISTEN right on global" in title
        assert not every.listening.is_set()
