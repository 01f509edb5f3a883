"""Every action taken from the dashboard, as the ``flow`` command that does the same."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, RichLog

from shellflow.tui.widgets import StatusBar, plain

if TYPE_CHECKING:
    from shellflow.tui.app import Dashboard, LoggedCommand


class CommandLogScreen(Screen[None]):
    TITLE = "Command log"

    def compose(self) -> ComposeResult:
        yield StatusBar("Command log")
        yield RichLog(id="command-log", wrap=True, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        dashboard: Dashboard = self.app  # type: ignore[assignment]
        for entry in dashboard.command_log:
            self.add(entry)
        if not dashboard.command_log:
            self.query_one(RichLog).write(
                Text(
                    "No actions yet. Each action taken here is logged as its flow command.",
                    style="dim",
                )
            )

    def add(self, entry: LoggedCommand) -> None:
        line = Text.assemble(
            (entry.at.strftime("%H:%M:%S "), "dim"), ("$ ", "dim"), plain(entry.command, "cyan")
        )
        line.append("\n  ")
        line.append_text(plain(entry.outcome, "red" if entry.failed else "green"))
        self.query_one(RichLog).write(line)
