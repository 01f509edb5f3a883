"""``?``: the keys of the screen you are on, then the keys that work everywhere."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

GLOBAL_KEYS = (
    ("?", "this help"),
    (":", "command palette: jump to calls, live, network, command log"),
    ("c / l / n", "calls, live channels, network (from the top screens)"),
    ("Escape", "back"),
    ("q", "quit"),
)


class HelpDialog(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, screen: Screen[object]) -> None:
        super().__init__()
        self.for_screen = screen

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        seen = {"quit", "help", "app.quit", "app.help"}  # listed with the global keys
        for key, text in getattr(self.for_screen, "HELP_KEYS", ()):
            table.add_row(key, text)
        for key, binding in self.for_screen.active_bindings.items():
            if binding.binding.show and binding.enabled and binding.binding.action not in seen:
                seen.add(binding.binding.action)
                table.add_row(binding.binding.key_display or key, binding.binding.description)
        table.add_row("", "")
        for key, text in GLOBAL_KEYS:
            table.add_row(key, text)
        with VerticalScroll(id="help"):
            yield Static(Text(self.for_screen.title or "Keys", style="bold"))
            yield Static(table)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
