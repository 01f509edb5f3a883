"""What the dashboard can do, each with the ``flow ...`` command that does the same.

Every action calls the same service function as the command it mirrors
(:mod:`shellflow.services.processors` for ``flow proc``, :mod:`shellflow.services.calls` for
``flow task run``, ``retry`` and ``cancel``), so the rights it needs, the status it asks
for and what it refuses are decided in one place: this module only words the question,
names the command and turns the service's result into a one-line outcome. The command text
feeds the dashboard's command log, as lazygit shows the git commands it runs.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shellflow.config import Settings
from shellflow.model import access  # looked up when called: a login changes who acts
from shellflow.services import calls, processors
from shellflow.tui.data.calls import describe_args, to_json


@dataclass(frozen=True)
class Action:
    """A confirmed verb: ``title`` asks, ``command`` is its ``flow`` equivalent, ``run`` acts
    (in a worker thread) and returns a one-line outcome."""

    title: str
    command: str
    run: Callable[[], str]


def processor_action(settings: Settings, name: str, verb: str, timeout: float = 60.0) -> Action:
    """Pause, resume or restart a processor (the agent serving it acts within seconds).

    ``verb`` is ``restart`` or any verb of ``flow proc`` (the dashboard offers pause and
    resume); ``timeout`` bounds a restart's wait for the worker to stop.
    """
    command = f"flow proc {verb} -n {shlex.quote(name)}"
    if verb == "restart":

        def restart() -> str:
            return processors.restart(
                settings, access.current_principal(settings), name, timeout
            ).summary

        return Action(f"Restart processor {name!r}?", command, restart)
    if verb not in processors.VERBS:
        raise KeyError(verb)

    def request() -> str:
        return processors.request(settings, access.current_principal(settings), name, verb).summary

    return Action(f"{verb.capitalize()} processor {name!r}?", command, request)


def rerun_command(socket: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    """The ``flow task run`` line sending the same arguments (its input is the first one)."""
    from shellflow.client.values import parse_value

    words = ["flow", "task", "run", "-s", socket]
    if args:
        first = args[0]
        # A string goes raw unless --data would read it back as another JSON value ("1").
        raw = isinstance(first, str) and parse_value(first) == first
        words += ["--data", first if raw else to_json(first)]
    words += [f"{key}:={to_json(value)}" for key, value in kwargs.items()]
    more = "  # + more positional arguments" if len(args) > 1 else ""
    return " ".join(shlex.quote(w) for w in words) + more


def rerun(settings: Settings, socket: str, stored_args: Any) -> Action:
    """Send the same socket the same arguments again: a new call in a new flow run.

    It is sent as the ``flow task run`` it shows, without waiting for the result: recorded
    once a worker takes it, as that command's calls are (no ``pending`` row).
    """
    args, kwargs = describe_args(stored_args)

    def send_again() -> str:
        sent = calls.send(settings, access.current_principal(settings), socket, args, kwargs,
                          record_pending=False)  # fmt: skip
        return f"sent {socket} again as call {sent.call_id}"

    question = f"Run {socket} again with the same arguments?"
    return Action(question, rerun_command(socket, args, kwargs), send_again)


def retry(settings: Settings, call_id: str) -> Action:
    """Send a dead, failed or cancelled call again as a new call linked to it, as
    ``flow task retry ID --async`` does (the same service call)."""

    def retry_call() -> str:
        sent = calls.retry(settings, access.current_principal(settings), call_id)
        done = f"retried call {call_id} as call {sent.call_id}"
        return done + (f" (not linked: {sent.unlinked})" if sent.unlinked else "")

    command = f"flow task retry {shlex.quote(call_id)} --async"
    return Action(f"Retry call {call_id} as a new call?", command, retry_call)


def cancel(settings: Settings, call_id: str, *, terminate: bool = False) -> Action:
    """Cancel a call, as ``flow task cancel [--terminate]`` does (the same service call).

    Without ``terminate`` a call already running is left alone; with it (the dashboard asks
    so for a running or received call) the worker stops it. A call already done is left
    alone, and the outcome says so.
    """

    def cancel_call() -> str:
        who = access.current_principal(settings)
        return calls.cancel(settings, who, call_id, terminate=terminate).summary

    command = f"flow task cancel {shlex.quote(call_id)}" + (" --terminate" if terminate else "")
    question = f"Stop running call {call_id}?" if terminate else f"Cancel call {call_id}?"
    return Action(question, command, cancel_call)
