"""The Calls screen: newest first, refreshed every second, one keyset page at a time.

The table holds one page (``PAGE_SIZE`` rows) whatever the number of calls, so memory does
not grow with the history; moving past its last row loads the next page, past its first
the previous one. Every read runs in a worker thread: a slow database never blocks keys.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from shellflow.tui.data.calls import (
    PAGE_SIZE,
    SORTS,
    CallFilter,
    CallPage,
    CallRow,
    Cursor,
    count_calls,
    fetch_page,
)
from shellflow.tui.widgets import StatusBar, clip, plain, seconds_text, state_text

if TYPE_CHECKING:
    from shellflow.tui.app import Dashboard

# (sort key, header, width)
COLUMNS = (
    ("socket", "socket", 26),
    ("state", "state", 8),
    ("started", "started (UTC)", 14),
    ("duration", "duration", 8),
    ("node", "node", 10),
)


class CallTable(DataTable[Any]):
    """A page of calls; asks its screen for the next or previous page at its edges."""

    def action_cursor_down(self) -> None:
        if self.row_count and self.cursor_row >= self.row_count - 1:
            self.screen.action_page(1)  # type: ignore[attr-defined]
        else:
            super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.row_count and self.cursor_row == 0:
            self.screen.action_page(-1)  # type: ignore[attr-defined]
        else:
            super().action_cursor_up()


class CallsScreen(Screen[None]):
    TITLE = "Calls"
    AUTO_FOCUS = "#calls-table"
    HELP_KEYS = (
        ("↑ ↓ Enter", "move; open the call's detail (past the edge: the next page)"),
        ("g / Home", "back to the newest calls"),
        ("Escape", "clear the filter"),
        ("/", "filter: socket:NAME, state:STATE or a state, other words match text"),
        ("1-5", "sort by socket, state, started, duration, node (again: reverse)"),
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Detail", show=False),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("1", "sort(0)", "Sort", key_display="1-5"),
        Binding("right_square_bracket", "page(1)", "Pages", key_display="[ ]"),
        Binding("left_square_bracket", "page(-1)", "Previous page", show=False),
        Binding("home,g", "top", "Newest", show=False),
        Binding("G", "graph", "Graph"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("2", "sort(1)", show=False),
        Binding("3", "sort(2)", show=False),
        Binding("4", "sort(3)", show=False),
        Binding("5", "sort(4)", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.where = CallFilter()
        self.sort = "started"
        self.descending = True
        self.start: Cursor | None = None  # first row of the page shown; None: the top
        self.page_number = 1
        self.page: CallPage | None = None
        self.total: tuple[int, bool] | None = None
        self._loading = False
        self._token = 0

    @property
    def dashboard(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusBar("Calls")
        yield Input(
            placeholder="socket:NAME state:STATE words…  (Enter applies, Escape clears)",
            id="calls-filter",
        )
        yield CallTable(id="calls-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="calls-info")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(CallTable)
        for key, header, width in COLUMNS:
            table.add_column(header, key=key, width=width)
        self.reload()
        if self.dashboard.refresh_seconds:
            self.set_interval(self.dashboard.refresh_seconds, self.poll)

    # -- loading -----------------------------------------------------------------------------

    def poll(self) -> None:
        if not self._loading and self.app.screen is self:
            self.reload()

    def reload(
        self, *, after: Cursor | None = None, before: Cursor | None = None, keep: str | None = None
    ) -> None:
        """Read the page (again) in a worker thread; results of older requests are dropped."""
        self._token += 1
        self._loading = True
        self._load(
            self._token, self.where, self.sort, self.descending, self.start, after, before, keep
        )

    @work(thread=True, group="calls")
    def _load(
        self,
        token: int,
        where: CallFilter,
        sort: str,
        descending: bool,
        start: Cursor | None,
        after: Cursor | None,
        before: Cursor | None,
        keep: str | None,
    ) -> None:
        try:
            # READ_CALL held on some processors only: the calls of those alone.
            scope = self.dashboard.principal.processors("READ_CALL")
            if not scope:
                self.dashboard.authorize("READ_CALL", "calls")
            where = replace(where, processors=scope)
            with self.dashboard.reader() as conn:
                page = fetch_page(
                    conn,
                    sort=sort,
                    descending=descending,
                    where=where,
                    start=None if (after or before) else start,
                    after=after,
                    before=before,
                )
                total = count_calls(conn, where)
        except Exception as exc:
            self.dashboard.from_thread(self._failed, token, exc)
            return
        self.dashboard.from_thread(self._show, token, page, total, after, before, keep)

    def _failed(self, token: int, exc: Exception) -> None:
        if token == self._token:
            self._loading = False
        self.dashboard.report_problem(exc)

    def _show(
        self,
        token: int,
        page: CallPage,
        total: tuple[int, bool],
        after: Cursor | None,
        before: Cursor | None,
        keep: str | None,
    ) -> None:
        if token != self._token:
            return
        self._loading = False
        self.dashboard.report_problem(None)
        if (after or before) and not page.rows:
            return  # no page beyond this edge: stay
        if after:
            self.page_number += 1
        elif before:
            self.page_number = max(1, self.page_number - 1)
        if before and not page.has_before:
            self.page_number = 1
        self.start = page.first if (page.has_before and page.rows) else None
        table = self.query_one(CallTable)
        old = self.page.rows if self.page else None
        selected = keep or self._selected_id()
        self.page, self.total = page, total
        if old != page.rows or table.row_count != len(page.rows):
            table.clear()
            for row in page.rows:
                table.add_row(*self._cells(row), key=row.id)
        if keep == "last" and page.rows:
            table.move_cursor(row=len(page.rows) - 1)
        elif keep == "first":
            table.move_cursor(row=0)
        elif selected:
            index = next((i for i, r in enumerate(page.rows) if r.id == selected), None)
            if index is not None and index != table.cursor_row:
                table.move_cursor(row=index)
        self._info()

    def _cells(self, row: CallRow) -> tuple[Any, ...]:
        started = row.started.strftime("%m-%d %H:%M:%S") if row.started else ""
        duration = Text(seconds_text(row.duration), justify="right")
        if row.finished is None and row.started is not None:  # still going: time so far
            elapsed = (self.dashboard.clock() - row.started).total_seconds()
            duration = Text(seconds_text(max(0.0, elapsed)), style="dim", justify="right")
        return (
            clip(row.socket, 26, left=True), state_text(row.state), started, duration,
            clip(row.node, 10),
        )  # fmt: skip

    def _info(self) -> None:
        shown = len(self.page.rows) if self.page else 0
        first = (self.page_number - 1) * PAGE_SIZE + 1
        span = f"{first}-{first + shown - 1}" if shown else "0"
        arrow = "↓" if self.descending else "↑"
        total, exact = self.total or (0, True)
        text = f"calls {span} of {'' if exact else '≈'}{total:,} · sort {self.sort} {arrow}"
        if str(self.where):
            text += f" · filter: {self.where}"
        self.query_one("#calls-info", Static).update(plain(text))  # the filter as typed

    def _selected_id(self) -> str | None:
        if not self.page or not self.page.rows:
            return None
        row = self.query_one(CallTable).cursor_row
        return self.page.rows[row].id if 0 <= row < len(self.page.rows) else None

    def selected(self) -> CallRow | None:
        chosen = self._selected_id()
        return next((r for r in self.page.rows if r.id == chosen), None) if self.page else None

    # -- actions -------------------------------------------------------------------------------

    def action_page(self, step: int) -> None:
        if self.page is None:
            return
        if step > 0 and self.page.has_after and self.page.last:
            self.reload(after=self.page.last, keep="first")
        elif step < 0 and self.page.has_before and self.page.first:
            self.reload(before=self.page.first, keep="last")

    def action_top(self) -> None:
        self.start, self.page_number = None, 1
        self.reload(keep="first")

    def action_sort(self, index: int) -> None:
        key = COLUMNS[index][0]
        assert key in SORTS
        if key == self.sort:
            self.descending = not self.descending
        else:
            self.sort, self.descending = key, key in ("started", "duration")
        self.action_top()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self.action_sort(event.column_index)

    def action_filter(self) -> None:
        box = self.query_one("#calls-filter", Input)
        box.display = True
        box.value = str(self.where)
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.where = CallFilter.parse(event.value)
        event.input.display = bool(str(self.where))
        self.query_one(CallTable).focus()
        self.action_top()

    def action_clear_filter(self) -> None:
        box = self.query_one("#calls-filter", Input)
        if box.display or str(self.where):
            box.value, box.display = "", False
            self.query_one(CallTable).focus()
            if str(self.where):
                self.where = CallFilter()
                self.action_top()

    def on_key(self, event: Any) -> None:
        box = self.query_one("#calls-filter", Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            self.action_clear_filter()

    def action_open(self) -> None:
        row = self.selected()
        if row is not None:
            self.dashboard.open_call(row.id)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_graph(self) -> None:
        row = self.selected()
        if row is not None:
            self.dashboard.open_graph(row.id)
