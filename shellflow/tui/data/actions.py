"""What the dashboard can do, each with the ``flow ...`` command that does the same.

Every action is authorised like the command it mirrors, and writes through the same model
functions (the store for a processor's requested status, ``engine.calls.sender.send`` for a
re-run, ``engine.calls.outcomes.cancel`` for a cancel), so the dashboard is never a second code path
with rules of its own. The command text feeds the dashboard's command log, as lazygit shows
the git commands it runs.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shellflow.config import Settings
from shellflow.errors import Conflict, TimedOut
from shellflow.model.access import authorize, current_principal
from shellflow.model.listing import get_object, reader
from shellflow.tui.data.calls import describe_args, to_json

# verb -> (right, requested status); as ``flow proc`` (shellflow/commands/proc.py) sets them.
PROCESSOR_VERBS: dict[str, tuple[str, str]] = {
    "pause": ("PAUSE_PROCESSOR", "paused"),
    "resume": ("RESUME_PROCESSOR", "running"),
}
# Statuses in which an agent holds (or is making) a worker for the processor.
ACTIVE = ("deploying", "running", "paused", "error")


@dataclass(frozen=True)
class Action:
    """A confirmed verb: ``title`` asks, ``command`` is its ``flow`` equivalent, ``run`` acts
    (in a worker thread) and returns a one-line outcome."""

    title: str
    command: str
    run: Callable[[], str]


def _request(settings: Settings, name: str, requested: str) -> str:
    """Set a processor's requested status, as ``flow proc`` does; returns the status it had."""
    from shellflow.model.db import session_scope
    from shellflow.model.store import Store

    with session_scope(settings.db) as session:
        store = Store(session, current_principal().name)
        previous = str(store.get("processor", name).status)
        store.update("processor", name, {"requested_status": requested})
    return previous


def _status(settings: Settings, name: str) -> str:
    with reader(settings.db) as conn:
        return str(get_object(conn, "processor", name)["status"])


def processor_action(settings: Settings, name: str, verb: str, timeout: float = 60.0) -> Action:
    """Pause, resume or restart a processor (the agent serving it acts within seconds)."""
    command = f"flow proc {verb} -n {shlex.quote(name)}"
    if verb == "restart":

        def restart() -> str:
            principal = current_principal()
            authorize(principal, "STOP_PROCESSOR", name)
            authorize(principal, "START_PROCESSOR", name)
            previous = _request(settings, name, "stopped")
            try:
                if previous in ACTIVE:
                    deadline = time.monotonic() + timeout
                    while _status(settings, name) != "stopped":
                        if time.monotonic() > deadline:
                            raise TimedOut(f"processor {name!r} did not stop within {timeout:g} s")
                        time.sleep(0.2)
            finally:  # asked to run again even when the stop was not seen in time
                _request(settings, name, "running")
            return f"processor {name!r}: restarted (was {previous})"

        return Action(f"Restart processor {name!r}?", command, restart)
    right, requested = PROCESSOR_VERBS[verb]

    def request() -> str:
        authorize(current_principal(), right, name)
        previous = _request(settings, name, requested)
        return f"processor {name!r}: requested {requested} (was {previous})"

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
    """Send the same socket the same arguments again: a new call in a new flow run."""
    args, kwargs = describe_args(stored_args)

    def send_again() -> str:
        from shellflow.engine.calls.sender import send

        authorize(current_principal(), "RUN_TASK", socket)
        sent = send(settings, socket, args, kwargs)
        return f"sent {socket} again as call {sent.call_id}"

    question = f"Run {socket} again with the same arguments?"
    return Action(question, rerun_command(socket, args, kwargs), send_again)


def cancel(settings: Settings, call_id: str, *, terminate: bool = False) -> Action:
    """Cancel a call, as ``flow task cancel [--terminate]`` does (same engine call).

    Without ``terminate`` a call already running is left alone; with it (the dashboard asks
    so for a running or received call) the worker stops it. A call already done is left
    alone, and the outcome says so.
    """

    def cancel_call() -> str:
        from shellflow.engine.calls.outcomes import cancel as engine_cancel

        authorize(current_principal(), "CANCEL_TASK", call_id)
        found = engine_cancel(settings, call_id, terminate=terminate)
        if found.state == "queued":
            return f"cancelled call {call_id}"
        if found.state == "revoked":
            return f"call {call_id} was already cancelled"
        if found.done:
            raise Conflict(f"call {call_id} has already {found.state}; it cannot be cancelled")
        if terminate and found.state != "unknown":
            return f"stopping call {call_id} ({found.state}); its record will say 'revoked'"
        raise Conflict(
            f"call {call_id} has already started ({found.state}); use --terminate to stop it"
        )

    command = f"flow task cancel {call_id}" + (" --terminate" if terminate else "")
    question = f"Stop running call {call_id}?" if terminate else f"Cancel call {call_id}?"
    return Action(question, command, cancel_call)
