"""The dashboard application and :func:`make_app`, the one factory the CLI and tests share.

Top-level screens are Textual *modes* (calls, live, network, command log): each keeps its
own stack, so a call opened from Calls is still there after a look at the network. The app
owns what every screen shares: settings, the read-only switch, the status bar's summary,
the last problem (a database that cannot be read: shown, then retried), and the log of
actions taken, each as the ``flow`` command that does the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen

from shellflow.config import Settings
from shellflow.errors import PermissionDenied
from shellflow.model import access
from shellflow.model.access import Principal, authorize
from shellflow.model.listing import Reader, reader
from shellflow.printable import printable
from shellflow.redact import mask_text
from shellflow.tui.data.actions import Action
from shellflow.tui.data.calls import now
from shellflow.tui.data.network import Summary, summary
from shellflow.tui.dialogs import ConfirmDialog, HelpDialog
from shellflow.tui.screens import (
    CallDetailScreen,
    CallGraphScreen,
    CallsScreen,
    CommandLogScreen,
    LiveScreen,
    NetworkScreen,
)


@dataclass(frozen=True)
class LoggedCommand:
    at: datetime
    command: str
    outcome: str
    failed: bool


class Dashboard(App[None]):
    CSS_PATH = "dashboard.tcss"
    TITLE = "shellflow"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("colon,ctrl+p", "command_palette", "Jump", key_display=":", show=False),
        Binding("c", "switch_mode('calls')", "Calls", show=False),
        Binding("l", "switch_mode('live')", "Live", show=False),
        Binding("n", "switch_mode('network')", "Network", show=False),
        Binding("L", "switch_mode('log')", "Command log", show=False),
    ]
    summary: reactive[Summary | None] = reactive(None, always_update=True)
    problem: reactive[str] = reactive("")

    def __init__(
        self,
        settings: Settings,
        *,
        read_only: bool = False,
        channels: list[str] | None = None,
        refresh_seconds: float = 1.0,
        clock: Callable[[], datetime] = now,
        depths: bool = True,
        principal: Principal | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        # Who looks, resolved once: every screen's reads and every action are checked
        # against its rights (a set look-up), as the CLI checks them.
        self.principal = principal or access.current_principal(settings)
        self.read_only = read_only
        self.channels = channels or ["global"]
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self.depths = depths  # ask the broker for queue depths (Network screen)
        self.command_log: list[LoggedCommand] = []

    def on_mount(self) -> None:
        self.add_mode("calls", CallsScreen)
        self.add_mode("live", lambda: LiveScreen(self.channels))
        self.add_mode("network", NetworkScreen)
        self.add_mode("log", CommandLogScreen)
        self.switch_mode("calls")
        self.load_summary()
        if self.refresh_seconds:
            self.set_interval(max(2.0, self.refresh_seconds * 2), self.load_summary)

    # -- shared services -------------------------------------------------------------------------

    def reader(self) -> AbstractContextManager[Reader]:
        """A short-lived read-only connection: opened in the worker thread that uses it."""
        return reader(self.settings.db)

    def from_thread(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback`` on the UI thread; quietly nothing once the app is closing."""
        with suppress(RuntimeError):
            self.call_from_thread(callback, *args)

    def authorize(
        self, right: str, target: str | None = None, processor: str | None = None
    ) -> None:
        """Raise ``PermissionDenied`` unless the person looking holds ``right`` (checked in
        the worker thread before each read: a refused screen shows the refusal, no rows)."""
        authorize(self.principal, right, target, processor)

    def authorize_call(self, conn: Reader, call_id: str) -> frozenset[str] | None:
        """Raise ``PermissionDenied`` unless the person looking may read call ``call_id``:
        READ_CALL everywhere, or on the call's processor. The processors whose calls they
        may read (None: every one), for the calls read with it (its flow run's)."""
        from shellflow.model.history import processor_of_call

        scope = self.principal.processors("READ_CALL")
        if not scope:  # held everywhere (passes), or nowhere (refused before any read)
            self.authorize("READ_CALL", f"call {call_id}")
        else:
            self.authorize("READ_CALL", f"call {call_id}", processor_of_call(conn, call_id))
        return scope

    def report_problem(self, exc: BaseException | None) -> None:
        if exc is None:
            self.problem = ""
            return
        text = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        refused = isinstance(exc, PermissionDenied)  # asking again changes nothing
        again = "; retrying" if self.refresh_seconds and not refused else ""
        self.problem = mask_text(" ".join(str(text).split())) + again

    @work(thread=True, exclusive=True, group="summary")
    def load_summary(self) -> None:
        try:
            with self.reader() as conn:
                found = summary(conn, self.clock())
        except Exception as exc:
            self.from_thread(self.report_problem, exc)
            return
        self.from_thread(self._set_summary, found)

    def _set_summary(self, found: Summary) -> None:
        self.summary = found

    # -- navigation ------------------------------------------------------------------------------

    def open_call(self, call_id: str) -> None:
        self.push_screen(CallDetailScreen(call_id))

    def open_graph(self, call_id: str) -> None:
        self.push_screen(CallGraphScreen(call_id))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpDialog):
            self.push_screen(HelpDialog(self.screen))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for mode, title, text in (
            ("calls", "Calls", "Calls, newest first"),
            ("live", "Live", "Live channels side by side"),
            ("network", "Network", "Processors, sockets, plugs, nodes and agents"),
            ("log", "Command log", "The flow commands of the actions taken here"),
        ):
            yield SystemCommand(title, text, _switcher(self, mode))
        yield SystemCommand("Help", "Keys of this screen", self.action_help)
        yield from super().get_system_commands(screen)

    # -- actions ---------------------------------------------------------------------------------

    def confirm_and_run(self, action: Action, then: Callable[[], Any] | None = None) -> None:
        """Ask, then act in a worker thread; log the command and its outcome either way."""
        if self.read_only:
            self.notify("read-only dashboard: actions are disabled", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._act(action, then)

        self.push_screen(ConfirmDialog(action.title, action.command), answered)

    @work(thread=True, group="actions")
    def _act(self, action: Action, then: Callable[[], Any] | None) -> None:
        try:
            outcome, failed = action.run(), False
        except Exception as exc:
            outcome = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            failed = True
        self.from_thread(self._logged, LoggedCommand(self.clock(), action.command, outcome, failed))
        if then is not None:
            self.from_thread(then)

    def _logged(self, entry: LoggedCommand) -> None:
        self.command_log.append(entry)
        self.notify(  # names and error texts as stored: never markup, controls escaped
            f"$ {printable(entry.command)}\n{printable(entry.outcome)}",
            severity="error" if entry.failed else "information",
            timeout=6,
            markup=False,
        )
        for screen in _screens_of(self, CommandLogScreen):
            screen.add(entry)


def _switcher(app: Dashboard, mode: str) -> Callable[[], None]:
    return lambda: app.switch_mode(mode)  # type: ignore[return-value]


def _screens_of(app: App[Any], kind: type[Screen[Any]]) -> Iterator[Any]:
    for screen in app.screen_stack:
        if isinstance(screen, kind):
            yield screen
    for stack in app._screen_stacks.values():  # screens of modes not shown now
        for screen in stack:
            if isinstance(screen, kind) and screen not in app.screen_stack:
                yield screen


def make_app(
    settings: Settings,
    read_only: bool = False,
    *,
    channels: list[str] | None = None,
    refresh_seconds: float = 1.0,
    clock: Callable[[], datetime] = now,
    depths: bool = True,
    principal: Principal | None = None,
) -> Dashboard:
    """The dashboard for these settings; tests pass a fixed ``clock``, no refresh, and may
    pass who looks (else :func:`shellflow.model.access.current_principal`)."""
    return Dashboard(
        settings,
        read_only=read_only,
        channels=channels,
        refresh_seconds=refresh_seconds,
        clock=clock,
        depths=depths,
        principal=principal,
    )
