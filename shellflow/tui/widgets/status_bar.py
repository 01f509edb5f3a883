"""The top line: where you are (breadcrumbs), and the network's counts as the spec's console
shows them (active hosts, queues, processors), or why the database cannot be read."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from shellflow.printable import printable
from shellflow.tui.data.network import Summary


class StatusBar(Static):
    """Follows the app's ``summary`` and ``problem``; the screen sets ``crumbs``."""

    def __init__(self, crumbs: str) -> None:
        super().__init__(id="status-bar")
        self.crumbs = crumbs

    def on_mount(self) -> None:
        self.watch(self.app, "summary", self._redraw)
        self.watch(self.app, "problem", self._redraw)

    def set_crumbs(self, crumbs: str) -> None:
        self.crumbs = crumbs
        self._redraw()

    def _redraw(self, _: object = None) -> None:
        summary: Summary | None = getattr(self.app, "summary", None)
        problem: str = getattr(self.app, "problem", "")
        # Crumbs hold a socket name and a call id, problems an error text: both are stored.
        text = Text.assemble(("shellflow", "bold"), " ▸ ", (printable(self.crumbs), "bold"))
        if problem:
            text.append("  ")
            text.append(printable(problem), style="bold red")
        elif summary is not None:
            text.append(
                f"  hosts {summary.hosts} · queues {summary.queues} · processors "
                f"{summary.running}/{summary.processors}",
                style="dim" if not summary.hosts else "",
            )
        if getattr(self.app, "read_only", False):
            text.append("  [read-only]", style="italic")
        self.update(text)
