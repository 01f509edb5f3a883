"""The one authorisation gate: the local owner may act, anybody else is refused (exit 5)."""

from __future__ import annotations

import json
import os
import pwd
from typing import Any

import pytest

from shellflow.config import default_ini_path
from shellflow.errors import ExitCode, PermissionDenied
from shellflow.model import access
from shellflow.model.access import Principal, authorize, current_principal
from shellflow.model.rights import RIGHTS

STRANGER = Principal(name="mallory", local_owner=False)


def test_the_local_owner_may_do_everything() -> None:
    me = current_principal()
    assert me.local_owner
    # The owner is named by the effective uid, not by LOGNAME (anyone's to set).
    assert me.name == pwd.getpwuid(os.geteuid()).pw_name
    for right in RIGHTS:
        authorize(me, right)


@pytest.mark.parametrize("right", ["READ", "DB_DROP", "ADD_QUEUE", "LS_QUEUES"])
def test_anybody_else_is_refused(right: str) -> None:
    with pytest.raises(PermissionDenied) as caught:
        authorize(STRANGER, right, "queue q1")
    assert caught.value.exit_code == ExitCode.PERMISSION_DENIED == 5
    assert caught.value.message == f"mallory lacks the {right} right on queue q1"


def test_an_unknown_right_is_a_programming_error() -> None:
    # A misspelt right must fail loudly now, not lock everyone out once roles are enforced.
    with pytest.raises(ValueError, match="LS_QUEUE"):
        authorize(current_principal(), "LS_QUEUE")


def _as_stranger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(access, "current_principal", lambda *_a, **_k: STRANGER)


@pytest.mark.parametrize(
    "args",
    [
        ("config", "show"),
        ("--config",),
        ("db", "init"),
        ("db", "migrate"),
        ("db", "drop", "-y"),
        ("db", "rebuild", "-y"),
        ("db", "json"),
        ("ls", "queues"),
        ("add", "queue", "-n", "q2"),
        ("update", "queue", "-n", "q1", "-t", "fanout"),
        ("delete", "queue", "-n", "q1"),
    ],
)
def test_every_command_passes_the_gate(
    args: tuple[str, ...], cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Commands ask ``shellflow.model.access.current_principal`` who acts, and are refused."""
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    monkeypatch.setenv("SHELLFLOW_DB", url)
    cli.ok("db", "init")
    cli.ok("add", "queue", "-n", "q1")
    before = cli.ok("db", "json").stdout

    _as_stranger(monkeypatch)
    result = cli(*args)
    assert result.code == ExitCode.PERMISSION_DENIED, (result.code, result.stderr)
    assert result.stdout == ""
    assert "mallory lacks the" in result.stderr
    assert len(result.stderr.splitlines()) == 1

    monkeypatch.setattr(access, "current_principal", current_principal)
    after = json.loads(cli.ok("db", "json").stdout)
    trail = after.pop("audit")[len(json.loads(before)["audit"]) :]
    assert after == {k: v for k, v in json.loads(before).items() if k != "audit"}  # unchanged
    # ...but for the refusal, appended to the audit trail
    assert [(row["who"], row["action"]) for row in trail] == [("mallory", "refused")]
    assert not default_ini_path().exists()


def test_a_user_holds_the_rights_it_was_given_and_all_holds_every_one() -> None:
    from shellflow.errors import PermissionDenied

    runner = Principal(name="bob", rights=frozenset({"RUN_TASK"}))
    authorize(runner, "RUN_TASK", "s1")
    with pytest.raises(PermissionDenied, match="bob lacks the CANCEL_TASK right on s1"):
        authorize(runner, "CANCEL_TASK", "s1")
    admin = Principal(name="ann", rights=frozenset({"ALL"}))
    authorize(admin, "DELETE_SOCKET", "s1")


def test_a_right_held_on_one_processor_holds_there_alone() -> None:
    reader = Principal(name="bob", scoped={"READ_CALL": frozenset({"p1"})})
    authorize(reader, "READ_CALL", "call x", processor="p1")
    for elsewhere in ("p2", None):  # another processor, or a call of none: refused
        with pytest.raises(PermissionDenied, match="bob lacks the READ_CALL right on call x"):
            authorize(reader, "READ_CALL", "call x", processor=elsewhere)
    assert reader.holds_somewhere("READ_CALL") and not reader.holds_somewhere("LISTEN")
    assert reader.processors("READ_CALL") == {"p1"} and reader.processors("LISTEN") == set()
    everywhere = Principal(name="ann", rights=frozenset({"READ_CALL"}))
    assert everywhere.processors("READ_CALL") is None and everywhere.holds("READ_CALL", "p9")
