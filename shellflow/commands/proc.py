"""``flow proc start|stop|pause|resume|restart|remove|update -n NAME``: drive a processor.

Each command sets the processor's ``requested_status``; the agent serving it acts within
seconds. Stopping and pausing end its worker with a warm shutdown: calls sent meanwhile
wait in their queues and run when it starts or resumes. ``--wait`` returns only once the
agent reports the status reached (a failed start exits 1 with the processor's reason).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from shellflow.commands.complete import names_of
from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info
from shellflow.commands.params import SECONDS, TEXT
from shellflow.services.processors import VERBS

HELP = {
    "start": "Start a processor.",
    "stop": "Stop a processor (queued calls wait for its start).",
    "pause": "Pause a processor (queued calls wait for its resume).",
    "resume": "Resume a paused processor.",
    "remove": "Remove a processor from its node (the object stays).",
}


def _said(summary: str) -> str:
    """The service's sentence as a message line of ``flow`` (which starts with a capital)."""
    return summary[:1].upper() + summary[1:]


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--timeout", type=SECONDS, default=60.0, show_default=True,
        help="Seconds to wait for the agent",
    )(command)  # fmt: skip
    command = click.option(
        "--wait", is_flag=True, help="Return once the agent reports the new status"
    )(command)
    return click.option(
        "-n",
        "--name",
        required=True,
        type=TEXT,
        help="Processor name",
        shell_complete=names_of("processor"),
    )(command)


@click.group()
def proc() -> None:
    """Start, stop, pause, resume, restart, remove or update (--pull) processors."""


def _make(action: str) -> click.Command:
    @pass_app
    def command(
        app: AppContext, name: str, wait: bool, timeout: float, force: bool = False
    ) -> None:
        from shellflow.services import processors

        forcing = {"force": force} if action == "remove" else {}  # the dashboard's call else
        asked = processors.request(app.settings, app.principal, name, action, **forcing)
        info(_said(asked.summary))
        if asked.revoked:
            info(_said(asked.revoked))
        if wait:
            processors.wait_for(app.settings, name, asked.reached, timeout)

    command = _options(command)
    if action == "remove":  # the worker goes for good: calls waiting for it are stranded
        command = click.option(
            "--force", is_flag=True,
            help="Revoke the calls pending or running on its sockets (else refused, exit 4)",
        )(command)  # fmt: skip
    return click.command(action, help=HELP[action])(command)


for _action in VERBS:
    proc.add_command(_make(_action))


@proc.command("restart")
@click.option("-n", "--name", required=True, type=TEXT, help="Processor name",
              shell_complete=names_of("processor"))  # fmt: skip
@click.option("--wait", is_flag=True, help="Return once the agent reports it running")
@click.option("--timeout", type=SECONDS, default=60.0, show_default=True,
              help="Seconds to wait for the agent at each step")  # fmt: skip
@pass_app
def proc_restart(app: AppContext, name: str, wait: bool, timeout: float) -> None:
    """Restart a processor (stop it, then deploy and start it again)."""
    from shellflow.services import processors

    restarted = processors.restart(app.settings, app.principal, name, timeout)
    info(_said(restarted.summary))
    if wait:
        processors.wait_for(app.settings, name, "running", timeout)


@proc.command("update")
@click.option("-n", "--name", required=True, type=TEXT, help="Processor name",
              shell_complete=names_of("processor"))  # fmt: skip
@click.option("--pull", is_flag=True,
              help="Deploy the newest commit of its branch, tag or default branch")  # fmt: skip
@click.option("--wait", is_flag=True, help="Return once the agent reports it running")
@click.option("--timeout", type=SECONDS, default=60.0, show_default=True,
              help="Seconds to wait for the agent at each step")  # fmt: skip
@pass_app
def proc_update(app: AppContext, name: str, pull: bool, wait: bool, timeout: float) -> None:
    """Update a processor's code: with --pull, move it to its pin's newest commit.

    A processor runs the commit recorded when its branch (tag, default branch) was first
    resolved, shown as deployed_commit by 'flow ls processor -n NAME'; a branch that moves
    later is not followed, not even by a restart, until this command. An active processor
    is restarted (its agent fetches, records the new commit and starts it).
    """
    from shellflow.services import processors

    if not pull:
        raise click.UsageError(
            "nothing to update: give --pull (other fields: 'flow update processor')"
        )
    pulled = processors.pull(app.settings, app.principal, name, timeout)
    info(_said(pulled.summary))
    if wait and pulled.restarted:
        processors.wait_for(app.settings, name, "running", timeout)
        commit = processors.deployed_commit(app.settings, name)
        info(f"Processor {name!r} runs commit {commit}")
