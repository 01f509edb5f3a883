"""Processor actions: which right each needs, which status it requests, and restart.

A processor is driven by its ``requested_status``: these functions only write it (through
the model's store) and the agent serving the processor acts within seconds. ``flow proc``
and the dashboard's pause, resume and restart both call them, so an action cannot be
authorised or requested differently from one front-end to the other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shellflow.errors import CallFailed, TimedOut

if TYPE_CHECKING:
    from shellflow.config import Settings
    from shellflow.model.access import Principal


@dataclass(frozen=True)
class Verb:
    """What an action needs and asks for: the right, the requested status, and the status
    the agent reports once it is done (what ``--wait`` waits for)."""

    right: str
    requested: str
    reached: str


VERBS: dict[str, Verb] = {
    "start": Verb("START_PROCESSOR", "running", "running"),
    "stop": Verb("STOP_PROCESSOR", "stopped", "stopped"),
    "pause": Verb("PAUSE_PROCESSOR", "paused", "paused"),
    "resume": Verb("RESUME_PROCESSOR", "running", "running"),
    "remove": Verb("DELETE_PROCESSOR", "removed", "removed"),
}
# A restart asks to stop and then to start again, so it needs both rights.
RESTART_RIGHTS = ("STOP_PROCESSOR", "START_PROCESSOR")
# Statuses in which an agent holds (or is making) a worker for the processor: a restart
# waits for such a worker to stop before asking for a new one.
ACTIVE = ("deploying", "running", "paused", "error")


@dataclass(frozen=True)
class Requested:
    """A status asked for: ``previous`` is the status the processor had when asked."""

    name: str
    requested: str
    previous: str
    reached: str
    revoked: str | None = None  # what a forced removal revoked, as a sentence

    @property
    def summary(self) -> str:
        """The one sentence both front-ends show (the CLI capitalises it)."""
        return f"processor {self.name!r}: requested {self.requested} (was {self.previous})"


@dataclass(frozen=True)
class Restarted:
    """A restart asked for: stopped (and seen stopped) then asked to run again."""

    name: str
    previous: str

    @property
    def summary(self) -> str:
        """The one sentence both front-ends show (the CLI capitalises it)."""
        return f"processor {self.name!r}: restarted (was {self.previous})"


def request(
    settings: Settings, principal: Principal, name: str, verb: str, *, force: bool = False
) -> Requested:
    """Authorise ``verb`` (a key of :data:`VERBS`) on processor ``name`` and ask for its status.

    Raises ``PermissionDenied`` (exit 5) without the verb's right, ``NotFound`` (exit 3)
    for an unknown processor, ``KeyError`` for a verb that is not one (a programming error).
    ``remove`` takes the processor's worker away for good: refused (``Conflict``, exit 4)
    while its sockets have calls pending or running, unless ``force``, which revokes them
    (``shellflow.services.network``).
    """
    from shellflow.model.audit import authorize

    action = VERBS[verb]
    # A refusal is put in the audit trail; a grant on this processor alone is enough.
    authorize(settings.db, principal, action.right, name, processor=name)
    previous, revoked = _set_requested(
        settings, principal, name, action.requested, force=force, verb=verb
    )
    return Requested(name, action.requested, previous, action.reached, revoked)


def restart(
    settings: Settings, principal: Principal, name: str, timeout: float = 60.0
) -> Restarted:
    """Stop processor ``name`` and ask for it to run again (deployed afresh by its agent).

    Waits up to ``timeout`` seconds for an active worker to stop (``TimedOut`` otherwise,
    exit 7); the processor is asked to run again even then, so a restart never leaves it
    stopped because its stop was slow to be seen.
    """
    from shellflow.model.audit import authorize

    for right in RESTART_RIGHTS:
        authorize(settings.db, principal, right, name, processor=name)
    previous, _ = _set_requested(settings, principal, name, "stopped", verb="restart")
    try:
        if previous in ACTIVE:
            wait_for(settings, name, "stopped", timeout)
    finally:
        _set_requested(settings, principal, name, "running", verb="restart")
    return Restarted(name, previous)


@dataclass(frozen=True)
class Pulled:
    """A recorded commit cleared so that the processor's pin is resolved again."""

    name: str
    previous: str | None  # the commit recorded before (None: none was)
    restarted: bool

    @property
    def summary(self) -> str:
        """The one sentence both front-ends show (the CLI capitalises it)."""
        was = f"commit {self.previous[:12]}" if self.previous else "no recorded commit"
        then = "restarted to deploy" if self.restarted else "its next start deploys"
        return f"processor {self.name!r}: was at {was}; {then} its pin's newest commit"


def pull(settings: Settings, principal: Principal, name: str, timeout: float = 60.0) -> Pulled:
    """Make processor ``name`` deploy its branch's (tag's, default branch's) newest commit.

    Its agents deploy the commit recorded when its pin was first resolved, never a branch
    that moved since; this clears that record (after checking the repository is still
    allowed: ``RepoNotAllowed``, exit 5) and restarts an active processor, whose agent
    resolves the pin again and records the new commit. Needs ``UPDATE_PROCESSOR`` (and the
    restart's rights when it is active).
    """
    from shellflow.model.audit import authorize
    from shellflow.model.db import session_scope
    from shellflow.model.repos import effective, split_ini
    from shellflow.model.store import Store

    authorize(settings.db, principal, "UPDATE_PROCESSOR", name)
    ini = split_ini(settings.repos_allow)
    with session_scope(settings.db) as session:
        processor = Store(session, principal.name, ini).get("processor", name)
        effective(session, ini, f"ini {settings.ini_path}").check(processor.gitrepo)
        previous, active = processor.deployed_commit, processor.status in ACTIVE
        processor.deployed_commit = None
    if active:
        restart(settings, principal, name, timeout)
    return Pulled(name, previous, active)


def deployed_commit(settings: Settings, name: str) -> str | None:
    """The commit processor ``name`` records as deployed (None: not resolved yet)."""
    from shellflow.model.listing import get_object, reader

    with reader(settings.db) as conn:
        return get_object(conn, "processor", name).get("deployed_commit")


def status(settings: Settings, name: str) -> tuple[str, str | None]:
    """The status an agent reports for processor ``name``, and its reason (read lightly)."""
    from shellflow.model.listing import get_object, reader

    with reader(settings.db) as conn:
        row = get_object(conn, "processor", name)
    return str(row["status"]), row.get("status_reason")


def wait_for(settings: Settings, name: str, target: str, timeout: float) -> None:
    """Return once processor ``name`` reports ``target``.

    A start that ends in ``error`` raises ``CallFailed`` (exit 1) with the agent's reason
    rather than waiting out the timeout; no status in time raises ``TimedOut`` (exit 7),
    which most often means no agent serves the processor.
    """
    deadline = time.monotonic() + timeout
    while True:
        current, reason = status(settings, name)
        if current == target:
            return
        if current == "error" and target == "running":
            raise CallFailed(f"processor {name!r} failed to start: {reason}")
        if time.monotonic() > deadline:
            raise TimedOut(
                f"processor {name!r} is {current}, not {target}, after {timeout:g} s;"
                " is an agent serving it?"
            )
        time.sleep(0.2)


def _set_requested(
    settings: Settings, principal: Principal, name: str, requested: str, *, force: bool = False,
    verb: str = "update",
) -> tuple[str, str | None]:  # fmt: skip
    """Write the requested status through the store (one transaction); the status it had,
    and what a forced ``removed`` revoked once committed (a sentence; None: nothing).
    The audit trail records the change as ``verb`` (``start``, ``restart``...)."""
    from shellflow.model.db import session_scope
    from shellflow.model.store import Store
    from shellflow.services.network import check

    with session_scope(settings.db) as session:
        store = Store(session, principal.name)
        previous = str(store.get("processor", name).status)
        store.update("processor", name, {"requested_status": requested}, force=force, action=verb)
        check(settings, store.revocation)
    from shellflow.services.network import finish

    return previous, finish(settings, store.revocation)
