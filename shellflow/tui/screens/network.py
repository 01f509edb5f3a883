"""The network: processors, sockets with their queue depth, plugs, nodes and agents, and the
sockets' live metrics (throughput and queue depth with sparklines, the Metrics tab)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, TabbedContent, TabPane

from shellflow.tui.data.network import Network, age, queue_depths, read_network
from shellflow.tui.widgets import MetricsPanel, StatusBar, clip, plain, seconds_text

if TYPE_CHECKING:
    from shellflow.tui.app import Dashboard

STATUS_STYLES = {
    "running": "green",
    "active": "green",
    "paused": "yellow",
    "error": "bold red",
    "deploying": "cyan",
    "stopped": "bright_black",
    "removed": "bright_black",
}
TABLES: dict[str, tuple[str, ...]] = {
    "processors": ("name", "status", "requested", "cpus", "host", "repo", "commit"),
    "sockets": ("name", "processor", "queue", "task", "depth"),
    "plugs": ("name", "type", "source", "target", "argument"),
    "nodes": ("name", "hostname", "cpus", "load", "heartbeat", "status"),
    "agents": ("name", "node", "cpus", "pid", "heartbeat", "status"),
}


def _status(value: str | None) -> Text:
    return plain(value, STATUS_STYLES.get(value or "", ""))


class NetworkScreen(Screen[None]):
    TITLE = "Network"
    HELP_KEYS = (
        ("Tab", "between the tabs and the table; ← → change tab"),
        ("P U R", "pause, resume, restart the processor under the cursor"),
        ("Metrics", "tab: each socket's throughput and queue depth, live, with sparklines"),
    )
    BINDINGS = [
        Binding("P", "processor('pause')", "Pause"),
        Binding("U", "processor('resume')", "Resume"),
        Binding("R", "processor('restart')", "Restart"),
        Binding("ctrl+r", "reload", "Refresh", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.network: Network | None = None
        self._loading = False

    @property
    def dashboard(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusBar("Network")
        with TabbedContent(id="network-tabs"):
            for name, columns in TABLES.items():
                with TabPane(name.capitalize(), id=f"tab-{name}"):
                    table: DataTable[Any] = DataTable(id=name, cursor_type="row")
                    for column in columns:
                        table.add_column(column, key=column)
                    yield table
            with TabPane("Metrics", id="tab-metrics"):
                yield MetricsPanel(id="metrics-panel")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()
        if self.dashboard.refresh_seconds:
            self.set_interval(max(2.0, self.dashboard.refresh_seconds * 3), self._poll)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # The metrics are subscribed to once someone looks, and drawn while they do.
        self.query_one(MetricsPanel).shown(event.pane.id == "tab-metrics")

    def _poll(self) -> None:
        if not self._loading and self.app.screen is self:
            self.action_reload()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "processor":
            return not self.dashboard.read_only
        return True

    def action_reload(self) -> None:
        self._loading = True
        self._load()

    @work(thread=True, exclusive=True, group="network")
    def _load(self) -> None:
        try:
            self.dashboard.authorize("LS_PROCESSORS", "the network")
            with self.dashboard.reader() as conn:
                network = read_network(conn)
        except Exception as exc:
            self.dashboard.from_thread(self._failed, exc)
            return
        # Each socket has its own broker queue, named after it (engine/transport/routing.py).
        queues = sorted(s["name"] for s in network.sockets)
        depths: dict[str, int] = {}
        problem: Exception | None = None
        if self.dashboard.depths:
            try:
                depths = queue_depths(self.dashboard.settings.broker, queues)
            except Exception as exc:  # the network still shows, its depths "?", and why
                problem = exc
        self.dashboard.from_thread(self._show, network, depths, problem)

    def _failed(self, exc: Exception) -> None:
        self._loading = False
        self.dashboard.report_problem(exc)

    def _fill(self, name: str, rows: list[tuple[Any, ...]], keys: list[str]) -> None:
        table = self.query_one(f"#{name}", DataTable)
        chosen = table.cursor_row
        table.clear()
        for key, row in zip(keys, rows, strict=True):
            # A str cell would be read as markup: every one goes in as plain text.
            table.add_row(
                *(cell if isinstance(cell, Text) else plain(cell) for cell in row), key=key
            )
        if rows:
            table.move_cursor(row=min(chosen, len(rows) - 1))

    def _show(
        self, network: Network, depths: dict[str, int], problem: Exception | None = None
    ) -> None:
        self._loading = False
        self.dashboard.report_problem(problem)  # None: whatever was wrong is over
        self.network = network
        now = self.dashboard.clock()

        def beat(row: dict[str, Any]) -> str:
            seconds = age(row.get("heartbeat"), now)
            return "never" if seconds is None else seconds_text(seconds) + " ago"

        self._fill(
            "processors",
            [
                (
                    p["name"],
                    _status(p["status"]),
                    p["requested_status"] or "",
                    p["concurrency"] or "",
                    p["hostname"] or "any",
                    clip(p["gitrepo"], 24),
                    (p["commit"] or p["branch"] or "")[:10],
                )
                for p in network.processors
            ],
            [p["name"] for p in network.processors],
        )
        self._fill(
            "sockets",
            [
                (
                    s["name"],
                    s["processor"],
                    s["queue"],
                    s["task"],
                    str(depths[s["queue"]]) if s["queue"] in depths else "?",
                )
                for s in network.sockets
            ],
            [s["name"] for s in network.sockets],
        )
        self.query_one(MetricsPanel).show_sockets(network.sockets)
        self._fill(
            "plugs",
            [
                (p["name"], p["type"], p["source"], p["target"], p["argument"] or "")
                for p in network.plugs
            ],
            [p["name"] for p in network.plugs],
        )
        self._fill(
            "nodes",
            [
                (
                    n["name"],
                    n["hostname"] or "",
                    n["cpus"] or "",
                    "" if n["cpuload"] is None else f"{n['cpuload']:.2f}",
                    beat(n),
                    _status(n["status"]),
                )
                for n in network.nodes
            ],
            [n["name"] for n in network.nodes],
        )
        self._fill(
            "agents",
            [
                (
                    a["name"],
                    a["node"],
                    a["cpus"] or "",
                    a["pid"] or "",
                    beat(a),
                    _status(a["status"]),
                )
                for a in network.agents
            ],
            [a["name"] for a in network.agents],
        )

    def action_processor(self, verb: str) -> None:
        from shellflow.tui.data.actions import processor_action

        tabs = self.query_one(TabbedContent)
        if tabs.active != "tab-processors" or self.network is None or not self.network.processors:
            self.notify("choose a processor on the Processors tab first", severity="warning")
            return
        table = self.query_one("#processors", DataTable)
        name = self.network.processors[table.cursor_row]["name"]
        self.dashboard.confirm_and_run(
            processor_action(self.dashboard.settings, name, verb), then=self.action_reload
        )
