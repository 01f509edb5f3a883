"""The processor service: rights, requested statuses, restart, waiting, on both databases.

``flow proc`` and the dashboard's pause, resume and restart must apply the same rules, so
the last tests drive both front-ends against a recording stand-in of the service function
and check each reached it.
"""

from __future__ import annotations

from typing import Any

import pytest

from shellflow.config import Settings, load_settings
from shellflow.errors import CallFailed, ExitCode, NotFound, PermissionDenied, TimedOut
from shellflow.model.access import Principal
from shellflow.services import processors

OWNER = Principal("owner", local_owner=True)
GUEST = Principal("guest")  # holds no right: every action is refused


@pytest.fixture
def settings(initialised_db: str, cli: Any) -> Settings:
    """A database holding processor ``p1`` (status ``ready``, as ``flow add`` leaves it)."""
    cli.ok("add", "processor", "-n", "p1", "-g", "/nowhere", "-m", "mod")
    return load_settings({"db": initialised_db})


def row(settings: Settings) -> tuple[str, str]:
    """Processor p1's (status, requested_status)."""
    from shellflow.model.listing import get_object, reader

    with reader(settings.db) as conn:
        found = get_object(conn, "processor", "p1")
    return str(found["status"]), str(found["requested_status"])


def set_status(settings: Settings, status: str, reason: str | None = None) -> None:
    """Play the agent: report a status for p1."""
    from sqlalchemy import text

    from shellflow.model.db import session_scope

    with session_scope(settings.db) as session:
        session.execute(
            text("UPDATE processor SET status = :s, status_reason = :r"), {"s": status, "r": reason}
        )


@pytest.mark.parametrize("verb", sorted(processors.VERBS))
def test_request_asks_for_the_verbs_status(settings: Settings, verb: str) -> None:
    asked = processors.request(settings, OWNER, "p1", verb)
    expected = processors.VERBS[verb].requested
    assert (asked.requested, asked.previous, asked.reached) == (
        expected, "ready", processors.VERBS[verb].reached,
    )  # fmt: skip
    assert row(settings) == ("ready", expected)  # the agent, not the service, changes status
    assert asked.summary == f"processor 'p1': requested {expected} (was ready)"


def test_every_verb_names_a_known_right() -> None:
    from shellflow.model.rights import RIGHTS

    rights = [v.right for v in processors.VERBS.values()] + list(processors.RESTART_RIGHTS)
    assert set(rights) <= set(RIGHTS)


def test_request_without_the_right_is_refused_and_changes_nothing(settings: Settings) -> None:
    with pytest.raises(PermissionDenied, match="PAUSE_PROCESSOR right on p1") as caught:
        processors.request(settings, GUEST, "p1", "pause")
    assert caught.value.exit_code == ExitCode.PERMISSION_DENIED
    assert row(settings) == ("ready", "ready")


def test_request_of_an_unknown_processor_is_not_found(settings: Settings) -> None:
    with pytest.raises(NotFound):
        processors.request(settings, OWNER, "nope", "start")


def test_restart_needs_stop_and_start_rights(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shellflow.model import access

    asked: list[tuple[str, str | None, str | None]] = []
    monkeypatch.setattr(access, "authorize", lambda _p, right, target=None, on=None: asked.append(
        (right, target, on)))  # fmt: skip
    processors.restart(settings, OWNER, "p1", timeout=0)
    # Each right held everywhere, or on p1 alone (a grant --processor p1), will do.
    assert asked == [("STOP_PROCESSOR", "p1", "p1"), ("START_PROCESSOR", "p1", "p1")]


def test_restart_of_a_processor_without_a_worker_does_not_wait(settings: Settings) -> None:
    """A ``ready`` processor has no worker to stop: it is asked to run at once."""
    restarted = processors.restart(settings, OWNER, "p1", timeout=0)
    assert restarted.previous == "ready"
    assert restarted.summary == "processor 'p1': restarted (was ready)"
    assert row(settings) == ("ready", "running")


def test_restart_whose_stop_is_not_seen_still_asks_to_run(settings: Settings) -> None:
    set_status(settings, "running")  # and no agent will ever report it stopped
    with pytest.raises(TimedOut, match="is running, not stopped") as caught:
        processors.restart(settings, OWNER, "p1", timeout=0.3)
    assert caught.value.exit_code == ExitCode.TIMED_OUT
    assert row(settings) == ("running", "running")


def test_restart_without_the_rights_changes_nothing(settings: Settings) -> None:
    with pytest.raises(PermissionDenied, match="STOP_PROCESSOR"):
        processors.restart(settings, GUEST, "p1", timeout=0)
    assert row(settings) == ("ready", "ready")


def test_wait_for_returns_once_the_status_is_reached(settings: Settings) -> None:
    set_status(settings, "paused")
    processors.wait_for(settings, "p1", "paused", timeout=0)


def test_a_start_that_ends_in_error_fails_with_the_agents_reason(settings: Settings) -> None:
    set_status(settings, "error", "git clone failed")
    with pytest.raises(CallFailed, match="failed to start: git clone failed"):
        processors.wait_for(settings, "p1", "running", timeout=30)


# -- one path: the CLI and the dashboard reach the same service functions ----------------------


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Stand-ins for request and restart that record who called them."""
    calls: list[tuple[str, ...]] = []

    def request(_s: Settings, _p: Principal, name: str, verb: str) -> processors.Requested:
        calls.append(("request", name, verb))
        return processors.Requested(name, "x", "y", "x")

    def restart(_s: Settings, _p: Principal, name: str, _t: float = 60) -> processors.Restarted:
        calls.append(("restart", name))
        return processors.Restarted(name, "y")

    monkeypatch.setattr(processors, "request", request)
    monkeypatch.setattr(processors, "restart", restart)
    return calls


def test_flow_proc_and_the_dashboard_call_the_same_request(
    settings: Settings, cli: Any, recorded: list[tuple[str, ...]]
) -> None:
    from shellflow.tui.data.actions import processor_action

    assert cli.ok("proc", "pause", "-n", "p1").stderr == "Processor 'p1': requested x (was y)\n"
    assert processor_action(settings, "p1", "pause").run() == "processor 'p1': requested x (was y)"
    assert recorded == [("request", "p1", "pause"), ("request", "p1", "pause")]


def test_flow_proc_restart_and_the_dashboard_call_the_same_restart(
    settings: Settings, cli: Any, recorded: list[tuple[str, ...]]
) -> None:
    from shellflow.tui.data.actions import processor_action

    assert cli.ok("proc", "restart", "-n", "p1").stderr == "Processor 'p1': restarted (was y)\n"
    assert processor_action(settings, "p1", "restart").run() == "processor 'p1': restarted (was y)"
    assert recorded == [("restart", "p1"), ("restart", "p1")]
