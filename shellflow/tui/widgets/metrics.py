"""The Network screen's Metrics tab: per socket, throughput and queue depth with sparklines.

A worker thread reads the workers' live metrics (``shellflow.services.metrics``, the reader
``flow top`` uses) and, once a second, hands the socket totals to the UI thread, which adds
them to bounded series (``shellflow.tui.data.metrics``) and redraws the rows. The thread
starts only when the tab is first shown (:meth:`MetricsPanel.shown`), so the screen opens
as fast as before; it subscribes only to the processors whose metrics the person looking
may read (LISTEN, as ``flow top``), and says so when that is none. Without metrics every
figure is a dash.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Sparkline, Static

from shellflow.tui.data.metrics import Trend, Trends, depth_text, rate_text
from shellflow.tui.widgets.state import clip, plain

if TYPE_CHECKING:
    from shellflow.tui.app import Dashboard

SAMPLE_SECONDS = 1.0  # workers publish once a second
# (header, column class) of each column, left to right
HEADER = (("processor", "processor"), ("socket", "socket"), ("W", "workers"),
          ("done/s", "rate"), ("throughput", "throughput"), ("queued", "depth"),
          ("queue depth", "queued"))  # fmt: skip


class SocketMetrics(Horizontal):
    """One socket's row: its names, current figures and two sparklines."""

    def __init__(self, processor: str, socket: str) -> None:
        super().__init__(classes="metrics-row")
        self.key = (processor, socket)

    def compose(self) -> ComposeResult:
        processor, socket = self.key
        yield Static(clip(processor, 13), classes="metrics-processor")
        yield Static(clip(socket, 40, left=True), classes="metrics-socket")
        yield Static("-", classes="metrics-workers")
        yield Static("-", classes="metrics-rate")
        yield Sparkline([], classes="metrics-throughput")
        yield Static("-", classes="metrics-depth")
        yield Sparkline([], classes="metrics-queued")

    def show(self, trend: Trend | None) -> None:
        self.query_one(".metrics-workers", Static).update(str(trend.workers) if trend else "-")
        self.query_one(".metrics-rate", Static).update(rate_text(trend))
        self.query_one(".metrics-depth", Static).update(depth_text(trend))
        self.query_one(".metrics-throughput", Sparkline).data = (
            list(trend.throughput) if trend else []
        )
        self.query_one(".metrics-queued", Sparkline).data = list(trend.queued) if trend else []


class MetricsPanel(Vertical):
    """The tab's content: a line saying what is read, a header, one row per socket."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.trends = Trends()
        self.known: list[tuple[str, str]] = []  # the stored sockets (processor, socket)
        self.scope: frozenset[str] | None = None
        self.listening = threading.Event()  # set while subscribed (tests wait for it)
        self._stop = threading.Event()
        self._started = False
        self._showing = False
        self.ticks = 0  # samples taken (tests wait for them)

    @property
    def dashboard(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(plain("live metrics: shown once this tab is open"), id="metrics-info")
        with Horizontal(classes="metrics-row metrics-header"):
            for cell, column in HEADER:
                yield Static(cell, classes=f"metrics-{column}")
        yield VerticalScroll(id="metrics-rows")

    def on_mount(self) -> None:
        from shellflow.services.metrics import listen_scope

        self.scope = listen_scope(self.dashboard.principal)

    def on_unmount(self) -> None:
        self._stop.set()

    def shown(self, showing: bool) -> None:
        """The tab was shown (or another one): the first time, build the rows and subscribe
        (once, in a worker thread). Rows are redrawn only while the tab shows; the series
        grow either way."""
        self._showing = showing
        if showing and not self._started:
            self._started = True
            self.dashboard.run_worker(
                self._listen, thread=True, group="metrics", exit_on_error=False
            )
        if showing:
            self._redraw()

    def show_sockets(self, sockets: list[dict[str, Any]]) -> None:
        """The stored sockets (the Network screen's last read): each gets a row, dashes
        until its workers report. Those of processors out of scope are left out, and so are
        the figures of sockets this database does not hold (another network's workers
        may publish on the same pub/sub server)."""
        self.known = sorted(
            (s["processor"], s["name"])
            for s in sockets
            if self.scope is None or s["processor"] in self.scope
        )
        self._redraw()

    def sample(self, rows: list[Any], now: float) -> None:
        """One sample of the feed's totals (UI thread)."""
        self.ticks += 1
        self.trends.add(rows, now)
        if self._started and self.listening.is_set():
            heard = sum(1 for key in self.known if self.trends.get(*key))
            self._info(
                f"live metrics of {heard} socket(s), one sample a second, last minute"
                if heard
                else "no metrics yet: workers publish them once a second"
            )
        self._redraw()

    def _info(self, text: str, style: str = "") -> None:
        self.query_one("#metrics-info", Static).update(plain(text, style))

    def _redraw(self) -> None:
        # Rows are built once the tab is shown (none slow the screen's start), and redrawn
        # only while it shows.
        if not self._showing or self.app.screen is not self.screen:
            return
        keys = self.known
        box = self.query_one("#metrics-rows", VerticalScroll)
        rows = list(box.query(SocketMetrics))
        if [row.key for row in rows] != keys:
            box.remove_children()
            rows = [SocketMetrics(*key) for key in keys]
            box.mount_all(rows)
            self.call_after_refresh(self._fill, rows)
        else:
            self._fill(rows)

    def _fill(self, rows: list[SocketMetrics]) -> None:
        for row in rows:
            if row.is_mounted:
                row.show(self.trends.get(*row.key))

    def _said(self, text: str, style: str = "") -> None:
        """The info line, from the worker thread."""
        self.dashboard.from_thread(self._info, text, style)

    def _listen(self) -> None:
        """Subscribe, then sample once a second until the panel goes; retried when broken."""
        from shellflow.engine.records.events import carries_live_events
        from shellflow.redact import mask_text, mask_url
        from shellflow.services.metrics import RIGHT, MetricsFeed

        dashboard = self.dashboard
        url = dashboard.settings.pubsub
        if self.scope == frozenset():
            who = dashboard.principal.name
            dashboard.from_thread(self._info, f"{who} lacks the {RIGHT} right: no metrics", "red")
            return
        if not carries_live_events(url):
            why = f"live metrics need a Redis pub/sub URL; {mask_url(url)} carries none"
            dashboard.from_thread(self._info, why, "yellow")
            return
        while not self._stop.is_set():
            try:
                feed = MetricsFeed(url, self.scope)
                feed.confirm()
            except Exception as exc:
                self._said(f"metrics: {mask_text(str(exc))}; retrying", "red")
                self._stop.wait(3.0)
                continue
            self.listening.set()
            try:
                due = time.monotonic() + SAMPLE_SECONDS
                while not self._stop.is_set():
                    feed.poll(min(0.5, max(0.0, due - time.monotonic())))
                    now = time.monotonic()
                    if now >= due:
                        dashboard.from_thread(self.sample, feed.rows(now), now)
                        due = max(due + SAMPLE_SECONDS, now)
            except Exception as exc:
                self._said(f"metrics: {mask_text(str(exc))}; retrying", "red")
                self._stop.wait(1.0)
            finally:
                self.listening.clear()
                feed.close()
