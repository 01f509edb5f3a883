"""The Network screen's Metrics tab on the real Redis pub/sub: throughput and queue depth with
sparklines, from the messages a worker's own reporter publishes; dashes without them; and
only the processors whose metrics the person looking may read.

Each test names its processors and sockets afresh (pub/sub channels are shared by every
Redis database) and keeps its queues in this test process's own Redis database.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import REDIS_URL, require_service
from tests.tui.conftest import MODULE, NOW, REPO, settle

pytestmark = pytest.mark.asyncio


def names(tag: str) -> tuple[str, str]:
    processor = f"spark-{tag}-{uuid.uuid4().hex[:8]}"
    return processor, f"{processor}.work"


def store(cli: Any, url: str, *pairs: tuple[str, str]) -> None:
    cli.ok("-d", url, "add", "queue", "-n", "spark.queue", "-t", "direct")
    for processor, socket in pairs:
        cli.ok("-d", url, "add", "processor", "-n", processor, "-g", REPO, "-m", MODULE)
        cli.ok("-d", url, "add", "socket", "-n", socket, "-q", "spark.queue", "-pn", processor,
               "-t", "do_something")  # fmt: skip


async def until(
    pilot: Any, check: Callable[[], Any], what: str, act: Callable[[], Any] | None = None
) -> None:
    """Pause until ``check()`` holds (doing ``act()`` first each time); fails after a while."""
    for _ in range(600):
        if act is not None:
            act()
        await pilot.pause(0.05)
        if check():
            return
    raise AssertionError(f"timed out waiting for {what}")


async def open_metrics(pilot: Any) -> Any:
    from shellflow.tui.widgets.metrics import MetricsPanel

    await settle(pilot)
    await pilot.press("n")
    await settle(pilot)
    screen = pilot.app.screen
    assert type(screen).__name__ == "NetworkScreen"
    panel = screen.query_one(MetricsPanel)
    assert not panel._started  # nothing subscribed before the tab is shown, no row drawn
    assert not panel.query_one("#metrics-table").row_count
    assert screen.query_one("#sockets").row_count
    screen.query_one("#network-tabs").active = "tab-metrics"
    await pilot.pause()
    return panel


def row_of(panel: Any, key: tuple[str, str]) -> dict[str, Any] | None:
    """The table's cells of socket ``key`` by column, None without its row."""
    from shellflow.tui.widgets.metrics import COLUMNS, row_key

    table = panel.query_one("#metrics-table")
    if row_key(*key) not in table.rows:
        return None
    return {column: table.get_cell(row_key(*key), column) for column, _, _ in COLUMNS}


def shown(row: dict[str, Any], part: str) -> str:
    return str(row[part])


def reporter(processor: str, socket: str) -> tuple[Any, Callable[[], Any]]:
    """A worker's reporter for ``socket`` publishing on the real Redis, and a counted call."""
    from shellflow.engine.worker.metrics import Meter, Reporter

    meter = Meter(1, 1)
    call = meter.timed(0, lambda: None)
    return Reporter(meter, REDIS_URL, REDIS_URL, processor, [socket], "w1@spark", None), call


async def test_sparklines_and_figures_follow_the_published_metrics(
    cli: Any, sqlite_db: str, make_dashboard: Any
) -> None:
    require_service("redis")
    from shellflow.engine.records.events import redis_client

    processor, socket = names("live")
    store(cli, sqlite_db, (processor, socket))
    queues = redis_client(REDIS_URL)
    queues.delete(socket)
    report, call = reporter(processor, socket)
    app = make_dashboard(sqlite_db, redis=REDIS_URL)
    try:
        async with app.run_test(size=(160, 30)) as pilot:
            panel = await open_metrics(pilot)
            key = (processor, socket)
            row = row_of(panel, key)
            assert row is not None and shown(row, "rate") == "-" and shown(row, "depth") == "-"
            await until(pilot, panel.listening.is_set, "the subscription")
            queues.rpush(socket, *["m"] * 3)  # three calls wait in the socket's queue

            def work() -> None:  # a busy worker: calls end, it reports
                call()
                call()
                report.publish_once()

            await until(pilot, lambda: (t := panel.trends.get(*key)) and t.rate and t.depth == 3,
                        "a throughput and a depth of 3", work)  # fmt: skip
            await pilot.pause()
            trend = panel.trends.get(*key)
            row = row_of(panel, key)
            assert trend.workers == 1 and max(trend.throughput) > 0 and 3.0 in trend.queued
            assert shown(row, "depth") == "3" and shown(row, "rate").endswith("/s")
            assert shown(row, "rate") != "-" and shown(row, "workers") == "1"
            assert row["queued"].data == list(trend.queued)
            assert row["throughput"].data == list(trend.throughput)
            chart = panel.query_one("#metrics-queued")  # the socket under the cursor, taller
            assert chart.data == list(trend.queued)

            queues.rpush(socket, *["m"] * 4)  # the queue grows, the calls stop
            await until(pilot, lambda: trend.depth == 7 and trend.rate == 0,
                        "a depth of 7 and no throughput", report.publish_once)  # fmt: skip
            await pilot.pause()
            row = row_of(panel, key)
            assert shown(row, "depth") == "7" and shown(row, "rate") == "0.0/s"
            assert {3.0, 7.0} <= set(row["queued"].data)
            assert row["throughput"].data[-1] == 0
            assert panel.query_one("#metrics-throughput").data[-1] == 0
            title = str(panel.query_one("#metrics-queued-title").content)
            assert title == f"queue depth 7 · {socket}"
            assert len(trend.throughput) <= 60 and len(trend.queued) <= 60
            info = str(app.screen.query_one("#metrics-info").content)
            assert info.startswith("live metrics of 1 socket(s)")  # other networks' are not
    finally:
        queues.delete(socket)
        queues.close()
        report.stop()


async def test_without_metrics_every_figure_is_a_dash(
    cli: Any, sqlite_db: str, make_dashboard: Any
) -> None:
    require_service("redis")
    processor, socket = names("quiet")
    store(cli, sqlite_db, (processor, socket))
    app = make_dashboard(sqlite_db, redis=REDIS_URL)
    async with app.run_test(size=(160, 30)) as pilot:
        panel = await open_metrics(pilot)
        await until(pilot, panel.listening.is_set, "the subscription")
        ticks = panel.ticks
        await until(pilot, lambda: panel.ticks >= ticks + 2, "two samples")
        row = row_of(panel, (processor, socket))
        assert [shown(row, part) for part in ("workers", "rate", "depth")] == ["-", "-", "-"]
        assert row["throughput"].data == [] and row["queued"].data == []
        assert panel.query_one("#metrics-queued").data == []
        assert "no metrics yet" in str(app.screen.query_one("#metrics-info").content)
        assert app.problem == ""


async def test_without_a_live_channel_the_tab_says_so(
    cli: Any, sqlite_db: str, make_dashboard: Any
) -> None:
    """A pub/sub URL that carries no live channel (the model database): dashes and a reason,
    no subscription and no error."""
    processor, socket = names("nochannel")
    store(cli, sqlite_db, (processor, socket))
    from shellflow.config import load_settings
    from shellflow.tui.app import make_app

    settings = load_settings({"db": sqlite_db, "pubsub": sqlite_db})
    app = make_app(settings, refresh_seconds=0, depths=False, clock=lambda: NOW)
    async with app.run_test(size=(160, 30)) as pilot:
        panel = await open_metrics(pilot)
        info = app.screen.query_one("#metrics-info")
        await until(pilot, lambda: "need a Redis pub/sub URL" in str(info.content), "the reason")
        row = row_of(panel, (processor, socket))
        assert shown(row, "rate") == "-" and shown(row, "depth") == "-"
        assert not panel.listening.is_set()


async def test_with_the_embedded_broker_stopped_the_tab_waits_for_it(
    cli: Any, sqlite_db: str, make_dashboard: Any
) -> None:
    """The embedded deployment, its broker (and so its pub/sub) not started: dashes and a
    reason, no error, and no connection tried."""
    from shellflow.urls import socket_path

    processor, socket = names("embedded")
    store(cli, sqlite_db, (processor, socket))
    app = make_dashboard(sqlite_db)
    path = socket_path(app.settings.pubsub)
    assert path is not None and not path.exists()  # the embedded default, not running
    async with app.run_test(size=(160, 30)) as pilot:
        panel = await open_metrics(pilot)
        info = app.screen.query_one("#metrics-info")
        await until(pilot, lambda: "embedded broker" in str(info.content), "the reason")
        row = row_of(panel, (processor, socket))
        assert shown(row, "rate") == "-" and shown(row, "depth") == "-"
        assert not panel.listening.is_set() and app.problem == ""


async def test_only_the_processors_one_may_listen_to_are_shown(
    cli: Any, sqlite_db: str, make_dashboard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bob holds LISTEN on one processor: the other's socket has no row, its messages are
    not read, and a message sent on the allowed channel posing as the other is dropped."""
    require_service("redis")
    from shellflow.engine.records.events import redis_client
    from shellflow.engine.records.metrics import message, summary
    from shellflow.model import access

    mine, theirs = names("mine"), names("theirs")
    store(cli, sqlite_db, mine, theirs)
    bob = access.Principal("bob", rights=frozenset({"LS_PROCESSORS"}),
                           scoped={"LISTEN": frozenset({mine[0]})})  # fmt: skip
    monkeypatch.setattr(access, "current_principal", lambda *_a, **_k: bob)
    data = summary((5, 5, 0), [0.01], 2, 1.0)
    pub = redis_client(REDIS_URL)

    def publish() -> None:
        for (processor, socket), channel in ((mine, mine[0]), (theirs, theirs[0]),
                                             (theirs, mine[0])):  # fmt: skip
            event = message(processor, socket, "w1@spark", None, 1, "2026-01-02", data)
            pub.publish(f"{channel}.metrics", event)

    app = make_dashboard(sqlite_db, redis=REDIS_URL)
    try:
        async with app.run_test(size=(160, 30)) as pilot:
            panel = await open_metrics(pilot)
            await until(pilot, panel.listening.is_set, "the subscription")
            await until(pilot, lambda: panel.trends.get(*mine), "bob's metrics", publish)
            ticks = panel.ticks
            await until(pilot, lambda: panel.ticks >= ticks + 2, "two more samples", publish)
            assert panel.trends.keys() == [mine]
            assert row_of(panel, theirs) is None and row_of(panel, mine) is not None
            assert shown(row_of(panel, mine), "depth") == "2"
    finally:
        pub.close()


async def test_without_listen_nothing_is_subscribed(
    cli: Any, sqlite_db: str, make_dashboard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shellflow.model import access

    pair = names("refused")
    store(cli, sqlite_db, pair)
    bob = access.Principal("bob", rights=frozenset({"LS_PROCESSORS"}))
    monkeypatch.setattr(access, "current_principal", lambda *_a, **_k: bob)
    app = make_dashboard(sqlite_db, redis=REDIS_URL)
    async with app.run_test(size=(160, 30)) as pilot:
        panel = await open_metrics(pilot)
        info = app.screen.query_one("#metrics-info")
        await until(pilot, lambda: "lacks the LISTEN right" in str(info.content), "the refusal")
        assert row_of(panel, pair) is None and not panel.listening.is_set()
