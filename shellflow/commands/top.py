"""``flow top``: the sockets' live metrics, busiest first, like ``top``.

Subscribes to the processors' ``metrics`` channels through the reader the dashboard shares
(``shellflow.services.metrics``), adds up what each worker reports and, every
``--interval`` seconds, shows one row per socket: a table redrawn in place on a terminal,
one JSON object per socket per refresh when stdout is not a terminal. The first refresh
waits one and a half intervals, so that every running worker (each publishes once a
second) has reported.
"""

from __future__ import annotations

import time
from typing import Any

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info, no_color, stdout_is_tty, to_json, write_lines
from shellflow.commands.params import SECONDS, TEXT, whole

COLUMNS = ("processor", "socket", "workers", "rate", "started", "finished", "failed",
           "running", "queued", "p50", "p99")  # fmt: skip


HEADERS = {"workers": "W", "rate": "CALLS/S", "started": "START", "finished": "DONE",
           "failed": "FAIL", "running": "RUN", "queued": "QUEUE"}  # fmt: skip


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1:
        return f"{value:.1f}s"
    return f"{value * 1000:.1f}ms" if value < 0.01 else f"{value * 1000:.0f}ms"


def _table(rows: list[Any], names: tuple[str, ...], width: int = 120) -> Any:
    """The rows as a table ``width`` columns wide: the names are cut short (…) to fit."""
    from rich.table import Table
    from rich.text import Text

    from shellflow.printable import printable

    scope = ", ".join(names) if names else "every processor"
    table = Table(title=Text(printable(f"flow top: {scope}")), title_justify="left",
                  header_style="bold", box=None, pad_edge=False)  # fmt: skip
    for column in COLUMNS:
        header = HEADERS.get(column, column.upper())
        if column in ("processor", "socket"):  # long names are cut short, never folded
            share = max(6, (width - 62) // 3) * (2 if column == "socket" else 1)
            table.add_column(header, no_wrap=True, overflow="ellipsis", max_width=share)
        else:  # the figures keep their width: the names give way
            table.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    for row in rows:
        table.add_row(
            Text(printable(row.processor)), Text(printable(row.socket)), str(row.workers),
            f"{row.rate:.2f}", str(row.started), str(row.finished), str(row.failed),
            str(row.running), "-" if row.queued is None else str(row.queued), _ms(row.p50),
            _ms(row.p99),
        )  # fmt: skip
    return table


@click.command()
@click.option(
    "-n", "--name", "names", multiple=True, type=TEXT,
    help="Processor to show (repeat for several) [default: every one]",
)  # fmt: skip
@click.option("--once", is_flag=True, help="Show one refresh, then exit (--count 1)")
@click.option("--count", type=whole(1), help="Stop after this many refreshes")
@click.option(
    "--interval", type=SECONDS, default=1.0, show_default=True,
    help="Seconds between refreshes (at least 0.2)",
)  # fmt: skip
@pass_app
def top(
    app: AppContext, names: tuple[str, ...], once: bool, count: int | None, interval: float
) -> None:
    """Show the sockets' live metrics, busiest first.

    Calls started, finished, failed and running, the queue's depth and the latency (p50,
    p99) over the last minute, per socket, added up over its workers: a table redrawn on
    a terminal (Ctrl-C ends it), one JSON object per socket per refresh when piped.
    """
    from shellflow.commands.listen import _known
    from shellflow.engine.records.events import GLOBAL, carries_live_events
    from shellflow.errors import UsageError
    from shellflow.redact import mask_url
    from shellflow.services.metrics import MetricsFeed

    names = tuple(dict.fromkeys(names))
    interval = max(interval, 0.2)
    if names:
        for name in names:
            app.authorize("LISTEN", name, name)
        for name in names:
            _known(app, name)
    else:
        app.authorize("LISTEN", GLOBAL, None)
    if not carries_live_events(app.settings.pubsub):
        raise UsageError(
            f"live metrics need a Redis pub/sub URL; {mask_url(app.settings.pubsub)} carries none"
        )
    feed = MetricsFeed(app.settings.pubsub, names or None)
    limit = 1 if once else count
    tty = stdout_is_tty()
    live: Any = None
    if tty:
        from rich.console import Console
        from rich.live import Live

        plain = no_color()
        console = Console(no_color=plain, color_system=None if plain else "auto", highlight=False)
        live = Live(_table([], names, console.width), console=console, auto_refresh=False)
        live.start()
    else:
        info(f"Listening to {', '.join(feed.patterns)}")
    shown = 0
    due = time.monotonic() + 1.5 * max(interval, 1.0)
    try:
        while True:
            now = time.monotonic()
            if now >= due:
                rows = feed.rows(now)
                if live is not None:
                    live.update(_table(rows, names, live.console.width), refresh=True)
                else:
                    write_lines([to_json(row.as_dict()) for row in rows])
                shown += 1
                if limit and shown >= limit:
                    break
                due = now + interval
                continue
            feed.poll(due - now)
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.stop()
        feed.close()
