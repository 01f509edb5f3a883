"""``flow worker start``: serve one processor's sockets in the foreground."""

from __future__ import annotations

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.params import LOGLEVELS, TEXT, Place, whole


@click.group()
def worker() -> None:
    """Run workers."""


@worker.command("start")
@click.option(
    "-n", "--name", "processor", required=True, type=TEXT, help="Processor whose sockets to serve"
)
@click.option(
    "-c",
    "--concurrency",
    type=whole(1),
    help="Worker processes [default: the processor's CPUs]",
)
@click.option(
    "--path",
    "paths",
    multiple=True,
    type=Place(file_okay=False, exists=True),
    help="Folder to import the processor's module from (repeatable)",
)
@click.option("--loglevel", type=LOGLEVELS, default="WARNING", show_default=True)
@pass_app
def worker_start(
    app: AppContext, processor: str, concurrency: int | None, paths: tuple[str, ...], loglevel: str
) -> None:
    """Serve PROCESSOR's sockets in this environment until stopped."""
    from shellflow.engine.worker.runtime import serve
    from shellflow.model.listing import get_object

    app.authorize("START_PROCESSOR", processor)
    if concurrency is None:
        with app.reader() as conn:
            concurrency = int(get_object(conn, "processor", processor)["concurrency"] or 1)
    serve(app.settings, processor, concurrency=concurrency, path=paths, loglevel=loglevel.upper())
