"""One call's story: arguments, result or error with its traceback, events, provenance, logs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from shellflow.model.history import UNFINISHED, get_call
from shellflow.printable import printable
from shellflow.tui.data.calls import call_logs, describe_args
from shellflow.tui.widgets import StatusBar, plain, state_text

if TYPE_CHECKING:
    from shellflow.tui.app import Dashboard


def _json(value: Any) -> Syntax | Text:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    if len(text) > 72:  # one line when it fits, indented when it does not
        text = json.dumps(value, indent=2, ensure_ascii=False, default=repr)
    # JSON escapes C0 itself but lets DEL and C1 through: those are written out too.
    return Syntax(printable(text, multiline=True), "json", word_wrap=True,
                  background_color="default")  # fmt: skip


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def render_call(call: dict[str, Any], logs: list[dict[str, Any]]) -> Group:
    """Everything about a call as one renderable (kept apart from the screen for tests)."""
    facts = Table.grid(padding=(0, 1))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    # Every stored value as plain(): a rich Table would read a str cell as markup.
    facts.add_row("call", plain(call["id"]))
    facts.add_row("socket", plain(call["name"]))
    facts.add_row("state", state_text(call["state"]))
    facts.add_row("started", plain(call.get("started")))
    facts.add_row("finished", plain(call.get("finished")))
    facts.add_row("node", plain(" ".join(filter(None, (call.get("hostname"), call.get("worker"))))))
    facts.add_row("parent", plain(call.get("parent") or "(none: a root call)"))
    facts.add_row("flow run", plain(call.get("flow")))
    if call.get("retry_of"):
        facts.add_row("retry of", plain(call["retry_of"]))
    if call.get("owner"):
        facts.add_row("owner", plain(call["owner"]))
    args, kwargs = describe_args(call.get("args"))
    parts: list[Any] = [facts, _section("Arguments"), _json({"args": args, "kwargs": kwargs})]
    if call.get("error") or call.get("traceback"):
        parts += [_section("Error"), plain(call.get("error"), "bold red", multiline=True)]
        if call.get("traceback"):
            parts.append(plain(call["traceback"].rstrip(), "red", multiline=True))
    elif "result" in call:
        parts += [_section("Result"), _json(call["result"])]
    events = Table.grid(padding=(0, 1))
    events.add_column(style="dim", no_wrap=True)
    events.add_column(no_wrap=True)
    events.add_column()
    for event in call.get("events", []):
        date = plain((event["date"] or "")[11:23])
        events.add_row(date, state_text(event["name"]), plain(event["note"]))
    parts += [_section(f"Events ({len(call.get('events', []))})"), events]
    lines = Text()
    for line in logs:
        lines.append(printable((line["date"] or "")[11:23]) + " ", style="dim")
        lines.append(printable(line["text"], multiline=True) + "\n")
    parts += [_section(f"Log lines ({len(logs)})"), lines if logs else Text("none", style="dim")]
    return Group(*parts)


class CallDetailScreen(Screen[None]):
    TITLE = "Call"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("G", "graph", "Graph"),
        Binding("p", "parent", "Parent"),
        Binding("r", "rerun", "Re-run"),  # a dead call: retried (flow task retry --async)
        Binding("x", "cancel", "Cancel call"),
    ]

    def __init__(self, call_id: str) -> None:
        super().__init__()
        self.call_id = call_id
        self.call: dict[str, Any] | None = None
        self.rendered: Group | None = None

    @property
    def dashboard(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusBar(f"Calls ▸ {self.call_id[:8]}")
        with VerticalScroll(id="detail-scroll"):
            yield Static("loading…", id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        if self.dashboard.refresh_seconds:
            self.set_interval(max(1.0, self.dashboard.refresh_seconds), self._poll)

    def _poll(self) -> None:
        if self.call is not None and self.call["state"] in UNFINISHED and self.app.screen is self:
            self.load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("rerun", "cancel") and self.dashboard.read_only:
            return False
        if action == "cancel" and self.call is not None and self.call["state"] not in UNFINISHED:
            return None  # shown dimmed: a finished call cannot be cancelled
        return True

    @work(thread=True, exclusive=True, group="detail")
    def load(self) -> None:
        try:
            with self.dashboard.reader() as conn:
                self.dashboard.authorize_call(conn, self.call_id)
                call = get_call(conn, self.call_id, result=True)
                logs = call_logs(conn, self.call_id)
        except Exception as exc:
            self.dashboard.from_thread(self._failed, exc)
            return
        self.dashboard.from_thread(self._show, call, logs)

    def _failed(self, exc: Exception) -> None:
        self.query_one("#detail", Static).update(plain(exc, "bold red"))
        self.dashboard.report_problem(exc)

    def _show(self, call: dict[str, Any], logs: list[dict[str, Any]]) -> None:
        self.call = call
        self.query_one(StatusBar).set_crumbs(f"Calls ▸ {call['name']} {self.call_id[:8]}")
        self.rendered = render_call(call, logs)
        self.refresh_bindings()
        self.query_one("#detail", Static).update(self.rendered)

    def action_graph(self) -> None:
        self.dashboard.open_graph(self.call_id)

    def action_parent(self) -> None:
        if self.call and self.call.get("parent"):
            self.dashboard.open_call(self.call["parent"])
        else:
            self.notify("a root call: no parent")

    def action_rerun(self) -> None:
        if self.call is not None:
            from shellflow.tui.data.actions import rerun, retry

            if self.call["state"] == "dead":  # sent again linked to it: flow task retry
                self.dashboard.confirm_and_run(retry(self.dashboard.settings, self.call_id))
                return
            self.dashboard.confirm_and_run(
                rerun(self.dashboard.settings, self.call["name"], self.call.get("args"))
            )

    def action_cancel(self) -> None:
        from shellflow.tui.data.actions import cancel

        # A call that has started (or is held by a worker) can only be cancelled by stopping it.
        started = self.call is not None and self.call["state"] in ("running", "received")
        self.dashboard.confirm_and_run(
            cancel(self.dashboard.settings, self.call_id, terminate=started)
        )
