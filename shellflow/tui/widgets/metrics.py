"""The Network screen's Metrics tab: per socket, throughput and queue depth with sparklines.

A worker thread reads the workers' live metrics (``shellflow.services.metrics``, the reader
``flow top`` uses) and, once a second, hands the socket totals to the UI thread, which adds
them to bounded series (``shellflow.tui.data.metrics``) and redraws. The thread starts only
when the tab is first shown (:meth:`MetricsPanel.shown`), so the screen opens as fast as
before; it subscribes only to the processors whose metrics the person looking may read
(LISTEN, as ``flow top``), and says so when that is none. Without metrics every figure is
a dash.

**One table, not a widget per socket.** Every socket is a row of a ``DataTable`` whose two
sparkline cells are drawn by Textual's sparkline renderable (what the ``Sparkline`` widget
draws), so a network of hundreds of sockets costs one widget: with 300 sockets, rows of
their own widgets took 6 to 8 s to appear, during which the dashboard did not answer; the
table under 1 s (docs/engine.md, Metrics). The socket under the cursor also gets two
taller ``Sparkline`` widgets below.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Sparkline, Static

from shellflow.tui.data.metrics import Trend, Trends, depth_text, rate_text
from shellflow.tui.widgets.state import clip, plain

if TYPE_CHECKING:
    from shellflow.tui.app import Dashboard

SAMPLE_SECONDS = 1.0  # workers publish once a second
SPARK_WIDTH = 20
# (column key, header, width or None) of the table, left to right: the figures before the
# sparklines, so that 80 columns show every figure (the selected socket's sparklines show
# whole below the table at any width)
COLUMNS = (("processor", "processor", None), ("socket", "socket", None), ("workers", "W", 3),
           ("rate", "done/s", 8), ("depth", "queued", 6),
           ("throughput", "throughput", SPARK_WIDTH),
           ("queued", "queue depth", SPARK_WIDTH))  # fmt: skip


def row_key(processor: str, socket: str) -> str:
    return json.dumps([processor, socket])


class MetricsPanel(Vertical):
    """The tab's content: a line saying what is read, the table, the selected socket's
    sparklines."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"metrics--min-color", "metrics--max-color"}
    DEFAULT_CSS = """
    MetricsPanel > .metrics--max-color { color: $primary; }
    MetricsPanel > .metrics--min-color { color: $primary 30%; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.trends = Trends()
        self.known: list[tuple[str, str]] = []  # the stored sockets (processor, socket)
        self.keys: list[tuple[str, str]] = []  # the table's rows
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
        yield Static(plain("live metrics: read once this tab is shown"), id="metrics-info")
        table: DataTable[Any] = DataTable(id="metrics-table", cursor_type="row")
        for key, header, width in COLUMNS:
            table.add_column(header, key=key, width=width)
        yield table
        with Horizontal(id="metrics-detail"):
            for name in ("throughput", "queued"):
                with Vertical(classes="metrics-chart"):
                    yield Static("", id=f"metrics-{name}-title")
                    yield Sparkline([], id=f"metrics-{name}")

    def on_mount(self) -> None:
        from shellflow.services.metrics import listen_scope

        self.scope = listen_scope(self.dashboard.principal)

    def on_unmount(self) -> None:
        self._stop.set()

    def shown(self, showing: bool) -> None:
        """The tab was shown (or another one): the first time, subscribe (once, in a worker
        thread). Redrawn only while the tab shows; the series grow either way."""
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

    def _spark(self, data: list[float]) -> Any:
        """A sparkline cell in the theme's colours, as the Sparkline widget draws one."""
        from textual.renderables.sparkline import Sparkline as SparklineRenderable

        _, base = self.background_colors
        low = base + self.get_component_styles("metrics--min-color").color
        high = base + self.get_component_styles("metrics--max-color").color
        return SparklineRenderable(
            data, width=SPARK_WIDTH, min_color=low.rich_color, max_color=high.rich_color
        )

    def _cells(self, trend: Trend | None) -> dict[str, Any]:
        return {  # in the order of COLUMNS after the names
            "workers": plain(trend.workers if trend else "-"),
            "rate": plain(rate_text(trend)),
            "depth": plain(depth_text(trend)),
            "throughput": self._spark(list(trend.throughput) if trend else []),
            "queued": self._spark(list(trend.queued) if trend else []),
        }

    def _redraw(self) -> None:
        if not self._showing or self.app.screen is not self.screen:
            return  # drawn only while shown: a hidden tab costs the screen nothing
        table = self.query_one("#metrics-table", DataTable)
        if self.keys != self.known:
            chosen = table.cursor_row
            table.clear()
            self.keys = list(self.known)
            for processor, socket in self.keys:
                cells = self._cells(self.trends.get(processor, socket))
                table.add_row(clip(processor, 24), clip(socket, 40, left=True), *cells.values(),
                              key=row_key(processor, socket))  # fmt: skip
            if self.keys:
                table.move_cursor(row=min(chosen, len(self.keys) - 1))
        else:
            for processor, socket in self.keys:
                key = row_key(processor, socket)
                for column, value in self._cells(self.trends.get(processor, socket)).items():
                    table.update_cell(key, column, value)
        self._detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._detail()

    def selected(self) -> tuple[str, str] | None:
        """The socket under the table's cursor."""
        row = self.query_one("#metrics-table", DataTable).cursor_row
        return self.keys[row] if 0 <= row < len(self.keys) else None

    def _detail(self) -> None:
        key = self.selected()
        trend = self.trends.get(*key) if key else None
        name = key[1] if key else ""
        for series, label, now in (("throughput", "calls finished/s", rate_text(trend)),
                                   ("queued", "queue depth", depth_text(trend))):  # fmt: skip
            self.query_one(f"#metrics-{series}-title", Static).update(
                plain(f"{label} {now} · {name}" if key else "")
            )
            data = getattr(trend, series) if trend else []
            self.query_one(f"#metrics-{series}", Sparkline).data = list(data)

    def _said(self, text: str, style: str = "") -> None:
        """The info line, from the worker thread."""
        self.dashboard.from_thread(self._info, text, style)

    def _listen(self) -> None:
        """Subscribe, then sample once a second until the panel goes; retried when broken."""
        from shellflow.engine.records.events import carries_live_events
        from shellflow.redact import mask_text, mask_url
        from shellflow.services.metrics import RIGHT, MetricsFeed
        from shellflow.urls import socket_path

        url = self.dashboard.settings.pubsub
        if self.scope == frozenset():
            self._said(
                f"{self.dashboard.principal.name} lacks the {RIGHT} right: no metrics", "red"
            )
            return
        if not carries_live_events(url):
            self._said(f"live metrics need a Redis pub/sub URL; {mask_url(url)} carries none")
            return
        path = socket_path(url)
        while not self._stop.is_set():
            if path is not None and not path.exists():  # nothing publishes: not a failure
                self._said("no metrics: the embedded broker (its pub/sub) is not running")
                self._stop.wait(3.0)
                continue
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
                        self.dashboard.from_thread(self.sample, feed.rows(now), now)
                        due = max(due + SAMPLE_SECONDS, now)
            except Exception as exc:
                self._said(f"metrics: {mask_text(str(exc))}; retrying", "red")
                self._stop.wait(1.0)
            finally:
                self.listening.clear()
                feed.close()
