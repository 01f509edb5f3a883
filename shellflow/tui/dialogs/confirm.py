"""Ask before acting, showing the ``flow`` command that does the same thing."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from shellflow.printable import printable


class ConfirmDialog(ModalScreen[bool]):
    """``y``/Enter confirms, ``n``/Escape declines."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, command: str) -> None:
        super().__init__()
        self.question = question
        self.command = command

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            # Both name a socket or a call id as stored: shown as text, controls escaped.
            yield Static(Text(printable(self.question), style="bold"))
            command = Text.assemble(("$ ", "dim"), (printable(self.command), "cyan"))
            yield Static(command, id="confirm-command")
            yield Static(Text("y / Enter: yes    n / Escape: no", style="dim"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
