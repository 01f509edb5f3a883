"""``flow proc start|stop|pause|resume|restart|remove -n NAME``: ask for a processor's status.

Each command sets the processor's ``requested_status``; the agent serving it acts within
seconds. Stopping and pausing end its worker with a warm shutdown: calls sent meanwhile
wait in their queues and run when it starts or resumes. ``--wait`` returns only once the
agent reports the status reached (a failed start exits 1 with the processor's reason).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click

from shellflow.commands.complete import names_of
from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info
from shellflow.errors import CallFailed, TimedOut

# command -> (right, requested status, status the agent reports once done)
ACTIONS: dict[str, tuple[str, str, str]] = {
    "start": ("START_PROCESSOR", "running", "running"),
    "stop": ("STOP_PROCESSOR", "stopped", "stopped"),
    "pause": ("PAUSE_PROCESSOR", "paused", "paused"),
    "resume": ("RESUME_PROCESSOR", "running", "running"),
    "remove": ("DELETE_PROCESSOR", "removed", "removed"),
}
HELP = {
    "start": "Start a processor.",
    "stop": "Stop a processor (queued calls wait for its start).",
    "pause": "Pause a processor (queued calls wait for its resume).",
    "resume": "Resume a paused processor.",
    "remove": "Remove a processor from its node (the object stays).",
}
# Statuses in which an agent holds (or is making) a worker for the processor.
ACTIVE = ("deploying", "running", "paused", "error")


def _status(app: AppContext, name: str) -> tuple[str, str | None]:
    from shellflow.model.listing import get_object

    with app.reader() as conn:
        row = get_object(conn, "processor", name)
    return str(row["status"]), row.get("status_reason")


def _request(app: AppContext, name: str, requested: str) -> str:
    """Set the requested status; returns the status the processor had."""
    with app.store() as store:
        processor = store.get("processor", name)
        previous = str(processor.status)
        store.update("processor", name, {"requested_status": requested})
    return previous


def _wait_for(app: AppContext, name: str, target: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status, reason = _status(app, name)
        if status == target:
            return
        if status == "error" and target == "running":
            raise CallFailed(f"processor {name!r} failed to start: {reason}")
        if time.monotonic() > deadline:
            raise TimedOut(
                f"processor {name!r} is {status}, not {target}, after {timeout:g} s;"
                " is an agent serving it?"
            )
        time.sleep(0.2)


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
        help="Seconds to wait for the agent",
    )(command)  # fmt: skip
    command = click.option(
        "--wait", is_flag=True, help="Return once the agent reports the new status"
    )(command)
    return click.option(
        "-n", "--name", required=True, help="Processor name", shell_complete=names_of("processor")
    )(command)


@click.group()
def proc() -> None:
    """Start, stop, pause, resume, restart or remove processors."""


def _make(action: str) -> click.Command:
    right, requested, reached = ACTIONS[action]

    @pass_app
    def command(app: AppContext, name: str, wait: bool, timeout: float) -> None:
        app.authorize(right, name)
        previous = _request(app, name, requested)
        info(f"Processor {name!r}: requested {requested} (was {previous})")
        if wait:
            _wait_for(app, name, reached, timeout)

    return click.command(action, help=HELP[action])(_options(command))


for _action in ACTIONS:
    proc.add_command(_make(_action))


@proc.command("restart")
@click.option("-n", "--name", required=True, help="Processor name",
              shell_complete=names_of("processor"))  # fmt: skip
@click.option("--wait", is_flag=True, help="Return once the agent reports it running")
@click.option("--timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds to wait for the agent at each step")  # fmt: skip
@pass_app
def proc_restart(app: AppContext, name: str, wait: bool, timeout: float) -> None:
    """Restart a processor (stop it, then deploy and start it again)."""
    app.authorize("STOP_PROCESSOR", name)
    app.authorize("START_PROCESSOR", name)
    previous = _request(app, name, "stopped")
    try:
        if previous in ACTIVE:
            _wait_for(app, name, "stopped", timeout)
    finally:  # asked to run again even when the stop was not seen in time
        _request(app, name, "running")
    info(f"Processor {name!r}: restarted (was {previous})")
    if wait:
        _wait_for(app, name, "running", timeout)
