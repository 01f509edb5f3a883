"""Live channels side by side, as ``flow listen`` prints them: pause, resume, filter, add."""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, RichLog, Static

from shellflow.tui.data.live import Subscription, event_line, processor_of, shown_pattern
from shellflow.tui.widgets import STATE_STYLES, StatusBar, plain

if TYPE_CHECKING:
    from shellflow.tui.app import Dashboard

HELD = 2000  # events kept while paused (the oldest are dropped beyond that)


class ChannelPane(Vertical):
    """One channel: its title line and its events, fed by a worker thread."""

    def __init__(self, channel: str) -> None:
        super().__init__(classes="channel")
        self.channel = channel
        self.pattern = shown_pattern(channel)
        self.held: deque[dict[str, Any]] = deque(maxlen=HELD)
        self.seen = 0
        self._stop = threading.Event()
        self.listening = threading.Event()  # set while subscribed (tests wait for it)

    def compose(self) -> ComposeResult:
        yield Static(plain(self.pattern), classes="channel-title")
        yield RichLog(max_lines=1000, wrap=False, markup=False)

    def on_mount(self) -> None:
        screen: LiveScreen = self.screen  # type: ignore[assignment]
        screen.dashboard.run_worker(self._listen, thread=True, group="live", exit_on_error=False)

    def on_unmount(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        """Subscribe, then poll until the pane goes; a broken connection is retried."""
        dashboard: Dashboard = self.app  # type: ignore[assignment]
        # Refused (LISTEN held neither everywhere nor on this processor): said once, never
        # subscribed.
        if not dashboard.principal.holds("LISTEN", processor_of(self.channel)):
            refusal = f"{dashboard.principal.name} lacks the LISTEN right on {self.pattern}"
            dashboard.from_thread(self._title, refusal, "red")
            return
        while not self._stop.is_set():
            try:
                subscription = Subscription(dashboard.settings.pubsub, self.channel)
            except Exception as exc:
                dashboard.from_thread(self._title, f"{self.pattern}: {exc}; retrying", "red")
                self._stop.wait(3.0)
                continue
            self.listening.set()
            dashboard.from_thread(self._title, self.pattern, "")
            try:
                while not self._stop.is_set():
                    event = subscription.poll(0.5)
                    if event is not None:
                        dashboard.from_thread(self.receive, event)
            except Exception as exc:
                dashboard.from_thread(self._title, f"{self.pattern}: {exc}; retrying", "red")
                self._stop.wait(1.0)
            finally:
                self.listening.clear()
                subscription.close()

    def _title(self, text: str, style: str) -> None:
        self.query_one(".channel-title", Static).update(plain(text, style))

    def receive(self, event: dict[str, Any]) -> None:
        screen: LiveScreen = self.screen  # type: ignore[assignment]
        self.seen += 1
        if screen.paused:
            self.held.append(event)
        else:
            self.show(event, screen.filter_text)

    def show(self, event: dict[str, Any], filter_text: str) -> None:
        line = event_line(event)
        if filter_text and filter_text.lower() not in line.lower():
            return
        style = STATE_STYLES.get(str(event.get("state")), "")
        if event.get("channel") == "error":
            style = "red"
        self.query_one(RichLog).write(plain(line, style))

    def release(self, filter_text: str) -> None:
        while self.held:
            self.show(self.held.popleft(), filter_text)


class LiveScreen(Screen[None]):
    TITLE = "Live"
    BINDINGS = [
        Binding("space,p", "pause", "Pause/resume", key_display="space"),
        Binding("a", "add", "Add channel"),
        Binding("x", "close", "Close channel"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("escape", "cancel_input", "Back", show=False),
    ]

    def __init__(self, channels: list[str]) -> None:
        super().__init__()
        self.channels = channels or ["global"]
        self.paused = False
        self.filter_text = ""
        self._asking = ""

    @property
    def dashboard(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusBar("Live")
        with Horizontal(id="channels"):
            for channel in self.channels:
                yield ChannelPane(channel)
        yield Input(id="live-input")
        yield Static("", id="live-info")
        yield Footer()

    def on_mount(self) -> None:
        self._info()

    def panes(self) -> list[ChannelPane]:
        return list(self.query(ChannelPane))

    def _info(self) -> None:
        state = "paused" if self.paused else "live"
        text = f"{state} · {len(self.panes())} channel(s)"
        if self.filter_text:
            text += f" · filter: {self.filter_text}"
        self.query_one("#live-info", Static).update(plain(text))

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            for pane in self.panes():
                pane.release(self.filter_text)
        self._info()

    def _ask(self, what: str, placeholder: str, value: str = "") -> None:
        self._asking = what
        box = self.query_one("#live-input", Input)
        box.placeholder, box.value, box.display = placeholder, value, True
        box.focus()

    def action_add(self) -> None:
        self._ask("add", "global, PROCESSOR or PROCESSOR.CHANNEL (task, log, result, error)")

    def action_filter(self) -> None:
        self._ask("filter", "show only lines containing…", self.filter_text)

    def action_close(self) -> None:
        panes = self.panes()
        if len(panes) > 1:
            panes[-1].remove()
            self.call_after_refresh(self._info)

    def action_cancel_input(self) -> None:
        box = self.query_one("#live-input", Input)
        if box.display:
            box.display = False
            self._asking = ""

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        value = event.value.strip()
        if self._asking == "add" and value:
            self.query_one("#channels").mount(ChannelPane(value))
        elif self._asking == "filter":
            self.filter_text = value
        self._asking = ""
        self.call_after_refresh(self._info)
