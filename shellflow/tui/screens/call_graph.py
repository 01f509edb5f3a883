"""The flow run of a call as a tree: expand, collapse, Enter opens a call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static, Tree
from textual.widgets.tree import TreeNode

from shellflow.model.history import flow_calls, get_call, tree
from shellflow.tui.widgets import STATE_STYLES, StatusBar, plain

if TYPE_CHECKING:
    from shellflow.tui.app import Dashboard


def label(call: dict[str, Any]) -> Text:
    return Text.assemble(
        plain(call["name"], "bold"),
        " ",
        plain(call["state"], STATE_STYLES.get(call["state"], "")),
        plain(f"  {call['id'][:8]}", "dim"),
    )


class CallGraphScreen(Screen[None]):
    TITLE = "Call graph"
    HELP_KEYS = (("↑ ↓", "move between calls"), ("space", "expand or collapse"))
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "open", "Open call"),
        Binding("space", "toggle_node", "Expand/collapse"),
        Binding("e", "expand_all", "Expand all"),
    ]

    def __init__(self, call_id: str) -> None:
        super().__init__()
        self.call_id = call_id

    @property
    def dashboard(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusBar(f"Calls ▸ graph of {self.call_id[:8]}")
        yield Tree[dict[str, Any]]("loading…", id="graph")
        yield Static("", id="graph-info")
        yield Footer()

    def on_mount(self) -> None:
        graph = self.query_one(Tree)
        graph.auto_expand = False
        graph.show_root = False
        graph.focus()
        self.load()

    @work(thread=True, exclusive=True, group="graph")
    def load(self) -> None:
        try:
            with self.dashboard.reader() as conn:
                scope = self.dashboard.authorize_call(conn, self.call_id)
                call = get_call(conn, self.call_id)
                flow = call.get("flow") or self.call_id
                calls = flow_calls(conn, flow, scope) or [call]
        except Exception as exc:
            self.dashboard.from_thread(self.dashboard.report_problem, exc)
            return
        self.dashboard.from_thread(self._show, flow, calls)

    def _show(self, flow: str, calls: list[dict[str, Any]]) -> None:
        graph = self.query_one(Tree)
        graph.clear()
        focus: TreeNode[dict[str, Any]] | None = None

        def add(parent: TreeNode[dict[str, Any]], node: dict[str, Any]) -> None:
            nonlocal focus
            children = node.pop("children")
            item = parent.add(label(node), data=node, expand=True, allow_expand=bool(children))
            if node["id"] == self.call_id:
                focus = item
            for child in children:
                add(item, child)

        for root in tree(calls):
            add(graph.root, root)
        graph.root.expand()
        if focus is not None:
            graph.call_after_refresh(graph.move_cursor, focus)
        states: dict[str, int] = {}
        for call in calls:
            states[call["state"]] = states.get(call["state"], 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        self.query_one("#graph-info", Static).update(
            plain(
                f"flow run {flow[:8]} · {len(calls)} calls: {summary}"
                f" · as of {self.dashboard.clock():%H:%M:%S}"
            )
        )

    def _node(self) -> TreeNode[dict[str, Any]] | None:
        return self.query_one(Tree).cursor_node

    def action_open(self) -> None:
        node = self._node()
        if node is not None and node.data:
            self.dashboard.open_call(node.data["id"])

    def on_tree_node_selected(self, event: Tree.NodeSelected[dict[str, Any]]) -> None:
        event.stop()
        self.action_open()

    def action_toggle_node(self) -> None:
        node = self._node()
        if node is not None:
            node.toggle()

    def action_expand_all(self) -> None:
        self.query_one(Tree).root.expand_all()
