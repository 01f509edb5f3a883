"""The audit trail on SQLite and PostgreSQL: what appends a row, what a row holds (never a
secret), ``flow ls audit`` and its right, and that the table only grows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from shellflow.model import access

BOB = access.Principal("bob", rights=frozenset())


def trail(cli: Any, *args: str) -> list[dict[str, Any]]:
    """``flow ls audit --json ARGS`` as rows, newest first (run as the local owner)."""
    out = cli.ok("ls", "audit", "--json", *args).stdout
    return [json.loads(line) for line in out.splitlines()]


@contextmanager
def acting_as(monkeypatch: pytest.MonkeyPatch, principal: access.Principal) -> Iterator[None]:
    with monkeypatch.context() as patched:
        patched.setattr(access, "current_principal", lambda *_a, **_k: principal)
        yield


def raw_rows(url: str) -> list[tuple[Any, ...]]:
    """Every stored row as the database holds it (the text a reader of the table sees)."""
    from shellflow.model.listing import reader

    with reader(url) as conn:
        return conn.query("SELECT who, action, kind, name, before, after, origin FROM audit")


def test_add_update_delete_append_rows_with_before_and_after(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "queue", "-n", "q1")
    cli.ok("update", "queue", "-n", "q1", "--rename", "q2")
    cli.ok("delete", "queue", "-n", "q2")

    deleted, updated, added = trail(cli)
    assert [r["action"] for r in (deleted, updated, added)] == ["delete", "update", "add"]
    assert all(r["kind"] == "queue" for r in (deleted, updated, added))
    assert added["name"] == "q1" and added["before"] is None and added["after"]["name"] == "q1"
    assert updated["name"] == "q2"
    assert (updated["before"]["name"], updated["after"]["name"]) == ("q1", "q2")
    assert deleted["before"]["name"] == "q2" and deleted["after"] is None
    assert added["who"] == access.current_principal().name
    assert added["where"].startswith("cli ")
    assert added["when"] < updated["when"] <= deleted["when"]


def test_a_failed_change_appends_nothing(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "queue", "-n", "q1")
    assert cli("add", "queue", "-n", "q1").code == 4  # rolled back with its row
    assert [r["action"] for r in trail(cli)] == ["add"]


def test_a_forced_change_is_recorded(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "queue", "-n", "q1")
    cli.ok("delete", "queue", "-n", "q1", "--force")
    forced = trail(cli, "--action", "force")
    assert len(forced) == 1
    assert forced[0]["kind"] == "queue" and forced[0]["name"] == "q1"
    assert forced[0]["after"] == {"change": "delete", "stranded calls": 0}


def test_processor_actions_are_recorded_as_their_verb(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "processor", "-n", "p1", "-g", "https://example.org/r.git", "-m", "mod")
    cli.ok("proc", "stop", "-n", "p1")
    (row,) = trail(cli, "--action", "stop")
    assert row["kind"] == "processor" and row["name"] == "p1"
    assert (row["before"]["requested_status"], row["after"]["requested_status"]) == (
        "ready",
        "stopped",
    )


def test_grants_and_revocations_are_recorded_and_say_who_granted(
    cli: Any, initialised_db: str
) -> None:
    from shellflow.model.audit import granted_by
    from shellflow.model.listing import reader

    cli.ok("add", "user", "-n", "alice", "-e", "a@x", "--password-stdin", input="pw-alice\n")
    cli.ok("add", "role", "-n", "ops")
    cli.ok("update", "user", "-n", "alice", "--add-role", "ops")
    cli.ok("add", "privilege", "-n", "READ_AUDIT", "-u", "alice")
    cli.ok("add", "privilege", "-n", "LS_QUEUES", "-r", "ops")
    cli.ok("add", "privilege", "-n", "RUN_TASK", "-r", "ops")
    cli.ok("delete", "privilege", "-n", "RUN_TASK", "-r", "ops")

    grants = trail(cli, "--action", "grant")
    assert [(g["name"], g["after"]) for g in grants] == [
        ("RUN_TASK", {"role": "ops"}),
        ("LS_QUEUES", {"role": "ops"}),
        ("READ_AUDIT", {"user": "alice"}),
    ]
    (revoked,) = trail(cli, "--action", "revoke")
    assert (revoked["name"], revoked["before"]) == ("RUN_TASK", {"role": "ops"})
    (roles,) = [r for r in trail(cli, "--action", "update") if r["kind"] == "user"]
    assert (roles["before"]["roles"], roles["after"]["roles"]) == ([], ["ops"])

    with reader(initialised_db) as conn:
        by = granted_by(conn, "alice")
    me = access.current_principal().name
    # Keyed as `flow ls user` shows them (the listing keeps the rows the user holds).
    assert set(by) == {("direct", "READ_AUDIT"), ("role ops", "LS_QUEUES"),
                       ("role ops", "RUN_TASK")}  # fmt: skip
    assert by[("direct", "READ_AUDIT")] == (me, grants[2]["when"])


def test_a_refusal_is_recorded_and_changes_nothing(
    cli: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with acting_as(monkeypatch, BOB):
        result = cli("add", "queue", "-n", "q1")
    assert result.code == 5 and "bob lacks the ADD_QUEUE right on q1" in result.stderr
    (row,) = trail(cli)
    assert (row["who"], row["action"], row["kind"], row["name"]) == (
        "bob", "refused", "ADD_QUEUE", "q1",
    )  # fmt: skip
    assert row["before"] is None and "bob lacks the ADD_QUEUE right" in row["after"]["message"]
    assert cli.ok("ls", "queues", "--json").stdout == ""  # nothing else changed


def test_a_refused_processor_action_is_recorded_once(
    cli: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.ok("add", "processor", "-n", "p1", "-g", "https://example.org/r.git", "-m", "mod")
    with acting_as(monkeypatch, BOB):
        assert cli("proc", "stop", "-n", "p1").code == 5
    refused = trail(cli, "--action", "refused")
    assert [(r["who"], r["kind"], r["name"]) for r in refused] == [("bob", "STOP_PROCESSOR", "p1")]
    assert not trail(cli, "--action", "stop")


def test_reading_the_trail_takes_its_right(
    cli: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with acting_as(monkeypatch, BOB):
        result = cli("ls", "audit")
    assert result.code == 5 and "READ_AUDIT" in result.stderr and result.stdout == ""
    reader_bob = access.Principal("bob", rights=frozenset({"READ_AUDIT"}))
    with acting_as(monkeypatch, reader_bob):
        shown = cli.ok("ls", "audit").stdout
    assert "refused" in shown and "READ_AUDIT" in shown


def test_the_listing_filters(
    cli: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.ok("add", "queue", "-n", "q1")
    cli.ok("add", "queue", "-n", "q2")
    with acting_as(monkeypatch, BOB):
        cli("add", "queue", "-n", "q3")
    assert [r["name"] for r in trail(cli, "--user", "bob")] == ["q3"]
    assert [r["name"] for r in trail(cli, "--action", "add")] == ["q2", "q1"]
    assert [r["name"] for r in trail(cli, "-r", "1")] == ["q3"]
    assert len(trail(cli, "--since", "1h")) == 3
    assert trail(cli, "--since", "2999-01-01T00:00:00") == []
    assert cli("ls", "audit", "--action", "nope").code == 2
    assert cli("ls", "audit", "--since", "yesterday").code == 2


def test_stored_text_is_escaped_for_the_terminal(cli: Any, initialised_db: str) -> None:
    from shellflow.model.audit import append_alone

    append_alone(initialised_db, "eve\x1b]52;c;x\x07", "add", "queue", "q\x1b[2J")
    shown = cli.ok("ls", "audit").stdout
    assert "\x1b" not in shown and "\\x1b[2J" in shown


def test_secrets_never_enter_the_trail(cli: Any, initialised_db: str) -> None:
    cli.ok(
        "add", "processor", "-n", "p1", "-m", "mod", "-p", "PROC-PASSWORD",
        "-g", "https://deploy:GIT-TOKEN@example.org/repo.git",
    )  # fmt: skip
    cli.ok("update", "processor", "-n", "p1", "-p", "NEW-PROC-PASSWORD")
    cli.ok("add", "user", "-n", "alice", "-e", "a@x", "--password-stdin", input="USER-PASSWORD\n")
    cli.ok("update", "user", "-n", "alice", "--password-stdin", input="NEW-USER-PASSWORD\n")
    cli.ok("delete", "processor", "-n", "p1")
    cli.ok("delete", "user", "-n", "alice")

    stored = json.dumps(raw_rows(initialised_db), default=str)
    for secret in ("PASSWORD", "GIT-TOKEN", "$argon2", "password_hash"):
        assert secret not in stored
    added = trail(cli, "--action", "add")
    processor = next(r for r in added if r["kind"] == "processor")["after"]
    assert processor["gitrepo"] == "https://deploy:***@example.org/repo.git"
    assert processor["password"] == "***"
    assert next(r for r in added if r["kind"] == "user")["after"]["password"] == "***"


def test_logins_are_recorded(cli: Any, initialised_db: str) -> None:
    from shellflow.model.audit import audit_login

    audit_login(initialised_db, "alice", True, "password")
    audit_login(initialised_db, "mallory", False, "password")
    failed, ok = trail(cli)
    assert (ok["who"], ok["action"], ok["after"]) == ("alice", "login", {"source": "password"})
    assert (failed["who"], failed["action"], failed["name"]) == (
        "mallory",
        "login_failed",
        "mallory",
    )


@pytest.mark.parametrize("statement", ["UPDATE audit SET who = 'x'", "DELETE FROM audit"])
def test_the_table_is_append_only(cli: Any, initialised_db: str, statement: str) -> None:
    from shellflow.model.listing import writer

    cli.ok("add", "queue", "-n", "q1")
    with writer(initialised_db) as conn, pytest.raises(Exception, match="append-only"):
        conn.execute(statement)
    assert [r[0] for r in raw_rows(initialised_db)] == [access.current_principal().name]


def test_compose_changes_are_recorded(cli: Any, initialised_db: str, tmp_path: Any) -> None:
    network = tmp_path / "network.yaml"
    network.write_text("version: 1\nqueues:\n  q1:\n    type: direct\n")
    cli.ok("compose", "up", str(network))
    network.write_text("version: 1\nqueues:\n  q1:\n    type: fanout\n")
    cli.ok("compose", "up", str(network))
    updated, added = trail(cli)
    assert (added["action"], added["kind"], added["name"]) == ("add", "queue", "q1")
    assert (updated["before"]["qtype"], updated["after"]["qtype"]) == ("direct", "fanout")


def test_the_python_api_is_audited_as_the_api(
    initialised_db: str, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shellflow
    from shellflow.client import settings as api_settings
    from shellflow.errors import PermissionDenied
    from shellflow.model import audit

    monkeypatch.setattr(audit, "_front", ["api"])  # this process may have run the CLI before
    shellflow.configure(db=initialised_db)
    try:
        shellflow.Processor(name="p1", gitrepo="https://example.org/r.git", module="m")
        with acting_as(monkeypatch, BOB), pytest.raises(PermissionDenied):
            shellflow.Processor(name="p2", gitrepo="https://example.org/r.git", module="m")
    finally:
        api_settings.reset()
    refused, added = trail(cli)
    assert (added["action"], added["name"], added["where"].split()[0]) == ("add", "p1", "api")
    assert (refused["who"], refused["kind"], refused["name"]) == ("bob", "ADD_PROCESSOR", "p2")
    assert [r["name"] for r in trail(cli, "--action", "add")] == ["p1"]


def test_a_refused_cancel_is_recorded_by_the_services_layer(
    cli: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shellflow.config import load_settings
    from shellflow.errors import PermissionDenied
    from shellflow.services import calls

    call = "0f8fad5b-d9cb-469f-a165-70867728950e"
    with pytest.raises(PermissionDenied):
        calls.cancel(load_settings(), BOB, call)
    (row,) = trail(cli)
    assert (row["who"], row["action"], row["kind"], row["name"]) == (
        "bob", "refused", "CANCEL_TASK", call,
    )  # fmt: skip
