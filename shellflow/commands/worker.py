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
@click.option(
    "--settings-fd",
    type=whole(0),
    help="Read the settings (URLs) from this inherited file descriptor and close it, instead"
    " of the environment and ini file (the agent starts its workers so: their functions never"
    " find a credential in their environment)",
)
@click.option(
    "--agent",
    type=TEXT,
    metavar="PID[-START]",
    help="Stop taking calls (a warm shutdown) within a second of this process's end: the"
    " agent that started this worker (the agent passes its own pid and start time)",
)
@click.option(
    "--deployment",
    type=TEXT,
    metavar="ID",
    help="The deployment (a share of a processor spread over several nodes) this worker"
    " serves: it autoscales within that share's part of the bounds and reports in its row"
    " (the agent passes it)",
)
@click.option(
    "--celery-events",
    "events",
    is_flag=True,
    help="Send Celery's task events and worker heartbeats (-E), for 'celery events' and Flower",
)
@pass_app
def worker_start(
    app: AppContext,
    processor: str,
    concurrency: int | None,
    paths: tuple[str, ...],
    loglevel: str,
    settings_fd: int | None,
    agent: str | None,
    deployment: str | None,
    events: bool,
) -> None:
    """Serve PROCESSOR's sockets in this environment until stopped."""
    from shellflow.engine.pids import ProcessId
    from shellflow.engine.worker.runtime import serve
    from shellflow.errors import UsageError
    from shellflow.model.listing import get_object

    app = _handed_over(app, settings_fd)
    watched = None if agent is None else ProcessId.parse(agent)
    if agent is not None and (watched is None or str(watched) != agent.strip()):
        raise UsageError(f"--agent {agent!r}: expected PID or PID-START (two whole numbers)")
    app.authorize("START_PROCESSOR", processor)
    if concurrency is None:
        with app.reader() as conn:
            concurrency = int(get_object(conn, "processor", processor)["concurrency"] or 1)
    serve(app.settings, processor, concurrency=concurrency, path=paths, loglevel=loglevel.upper(),
          agent=watched, events=events, deployment=deployment)  # fmt: skip


def _handed_over(app: AppContext, fd: int | None) -> AppContext:
    """The context on the settings the agent handed over, on ``fd`` or to the boot script
    (read before the processor's module is imported; see
    ``shellflow.engine.worker.credentials``); unchanged when none were."""
    import dataclasses
    import os

    from shellflow.config import load_settings
    from shellflow.engine.worker.credentials import (
        forget_environment,
        received,
        secrets_of,
        take_over,
    )
    from shellflow.errors import UsageError
    from shellflow.model.urls import check_settings

    try:
        values = received() if fd is None else take_over(fd)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--settings-fd {fd}: cannot read the settings: {exc}") from None
    if values is None:
        return app
    forget_environment(secrets_of(values))
    settings = load_settings(values, ini=os.devnull, environ={}, debug=app.settings.debug)
    return dataclasses.replace(app, settings=check_settings(settings))
