"""Rights held on one processor alone: granted, listed, read with the principal, enforced.

On SQLite and PostgreSQL. alice acts through a real token (``SHELLFLOW_TOKEN``), so her
rights are read by the one query that resolves her (``shellflow.model.credentials``): a
grant on p1 shows her p1's calls and nothing of p2's, nor the calls of no socket.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shellflow.errors import ExitCode
from tests.integration.typed_world import unused_port

NETWORK = [
    ("add", "queue", "-n", "q1"),
    ("add", "processor", "-n", "p1", "-m", "mod", "-g", "https://example.org/r.git"),
    ("add", "processor", "-n", "p2", "-m", "mod", "-g", "https://example.org/r.git"),
    ("add", "socket", "-n", "s1", "-q", "q1", "-pn", "p1", "-t", "t1"),
    ("add", "socket", "-n", "s2", "-q", "q1", "-pn", "p2", "-t", "t2"),
    ("add", "user", "-n", "alice", "-e", "alice@example.org", "--password-stdin"),
    ("add", "role", "-n", "ops"),
]
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CALLS = {"s1": "11111111-0000-4000-8000-000000000000",
         "s2": "22222222-0000-4000-8000-000000000000",
         "loose": "33333333-0000-4000-8000-000000000000"}  # fmt: skip


def store_calls(url: str) -> None:
    """One finished call per socket, one of no socket; an event each."""
    from sqlalchemy import select

    import shellflow.model.tables  # noqa: F401  (every mapper known)
    from shellflow.model.calls import Call, Event
    from shellflow.model.db import session_scope
    from shellflow.model.network import Socket

    with session_scope(url) as session:
        sockets = dict(session.execute(select(Socket.name, Socket.id)).all())
        for n, (name, call_id) in enumerate(CALLS.items()):
            started = T0 + timedelta(seconds=n)
            session.add(Call(id=call_id, name=name, state="finished", socket_id=sockets.get(name),
                             tracking=CALLS["s1"], started=started, finished=started))  # fmt: skip
            session.flush()
            session.add(Event(name="retry", note=f"{name} note", call_id=call_id, created=started))


@pytest.fixture
def world(cli: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The network above and its calls, added by the owner; alice's token in ``token``."""
    cli.ok("config", "set", "repos.allow", "https://example.org/*")
    for args in NETWORK:
        cli.ok(*args, input="alice-pw\n" if "--password-stdin" in args else None)
    cli.ok("update", "user", "-n", "alice", "--add-role", "ops")
    store_calls(initialised_db)
    token = cli.ok("token", "create", "-u", "alice").stdout.strip()
    monkeypatch.setenv("ALICE_TOKEN", token)
    yield initialised_db


def as_alice(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("SHELLFLOW_TOKEN", os.environ["ALICE_TOKEN"])


def as_owner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHELLFLOW_TOKEN", raising=False)


def listed(cli: Any) -> list[str]:
    out = cli.ok("ls", "calls", "--json", "-r", "100").stdout
    return sorted(json.loads(line)["name"] for line in out.splitlines())


def test_read_call_on_one_processor_lists_its_calls_alone(
    cli: Any, world: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_alice(monkeypatch)
    nothing = cli("ls", "calls")
    assert nothing.code == ExitCode.PERMISSION_DENIED
    assert nothing.stderr.strip() == "flow: alice lacks the READ_CALL right on calls"

    as_owner(monkeypatch)
    granted = cli.ok("add", "privilege", "-u", "alice", "-n", "READ_CALL", "--processor", "p1")
    assert "granted to 'alice' on processor 'p1'" in granted.stderr
    as_alice(monkeypatch)
    me = json.loads(cli.ok("whoami", "--json").stdout)
    assert me["rights"] == ["READ_CALL on p1"]
    assert listed(cli) == ["s1"]  # not p2's call, not the call of no socket
    assert cli.ok("ls", "calls", "--socket", "s2", "--json").stdout == ""
    shown = json.loads(cli.ok("ls", "call", "--id", CALLS["s1"], "--json").stdout)
    assert [e["note"] for e in shown["events"] if e["name"] == "retry"] == ["s1 note"]
    flow_run = cli.ok("ls", "call", "--id", CALLS["s1"], "--flow", "--json").stdout
    assert [json.loads(line)["name"] for line in flow_run.splitlines()] == ["s1"]
    for other in ("s2", "loose"):
        refused = cli("ls", "call", "--id", CALLS[other])
        assert refused.code == ExitCode.PERMISSION_DENIED, refused.stderr
        assert f"alice lacks the READ_CALL right on call {CALLS[other]}" in refused.stderr

    as_owner(monkeypatch)  # a grant through a role on p2 adds p2's calls
    cli.ok("add", "privilege", "-r", "ops", "-n", "READ_CALL", "--processor", "p2")
    as_alice(monkeypatch)
    assert listed(cli) == ["s1", "s2"]

    as_owner(monkeypatch)  # held everywhere: every call, the one of no socket too
    cli.ok("add", "privilege", "-u", "alice", "-n", "READ_CALL")
    as_alice(monkeypatch)
    assert listed(cli) == ["loose", "s1", "s2"]


def test_a_revocation_takes_a_scoped_right_away_and_a_deleted_processor_its_grants(
    cli: Any, world: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.ok("add", "privilege", "-r", "ops", "-n", "READ_CALL", "--processor", "p1")
    cli.ok("add", "privilege", "-u", "alice", "-n", "LISTEN", "--processor", "p2")
    as_alice(monkeypatch)
    assert listed(cli) == ["s1"]
    as_owner(monkeypatch)
    said = cli.ok("delete", "privilege", "-u", "alice", "-n", "READ_CALL")
    assert "revoked for this user alone" in said.stderr and "'ops'" in said.stderr
    as_alice(monkeypatch)
    assert cli("ls", "calls").code == ExitCode.PERMISSION_DENIED
    as_owner(monkeypatch)
    effective = user_rows(cli, "alice")
    assert ("READ_CALL", "revoked") in effective and ("LISTEN on p2", "direct") in effective
    assert ("READ_CALL on p1", "role ops") not in effective  # revoked: not held anywhere

    cli.ok("delete", "socket", "-n", "s2")
    cli.ok("delete", "processor", "-n", "p2")
    assert ("LISTEN on p2", "direct") not in user_rows(cli, "alice")
    grants = objects(cli, "privileges")
    assert [(g["name"], g["role"], g["processor"]) for g in grants] == [("READ_CALL", "ops", "p1")]


def user_rows(cli: Any, name: str) -> list[tuple[str, str]]:
    shown = json.loads(cli.ok("ls", "user", "-n", name, "--json").stdout)
    return [(e["right"], e["source"]) for e in shown["effective"]]


def test_only_processor_rights_can_be_scoped_and_a_scoped_grant_is_taken_back_alone(
    cli: Any, world: str
) -> None:
    wrong = cli("add", "privilege", "-u", "alice", "-n", "ADD_QUEUE", "--processor", "p1")
    assert wrong.code == ExitCode.USAGE
    assert "only READ_CALL, LISTEN, START_PROCESSOR" in wrong.stderr
    assert cli("add", "privilege", "-u", "alice", "-n", "LISTEN", "--processor", "p9").code == 3
    cli.ok("add", "privilege", "-u", "alice", "-n", "LISTEN", "--processor", "p1")
    unscoped = cli("delete", "privilege", "-u", "alice", "-n", "LISTEN")
    assert unscoped.code == ExitCode.NOT_FOUND
    assert "(held on p1 alone: add --processor)" in unscoped.stderr
    again = cli("add", "privilege", "-u", "alice", "-n", "LISTEN", "--processor", "p1")
    assert again.code == ExitCode.CONFLICT
    cli.ok("add", "privilege", "-u", "alice", "-n", "LISTEN")
    cli.ok("delete", "privilege", "-u", "alice", "-n", "LISTEN", "--processor", "p1")
    assert user_rows(cli, "alice") == [("LISTEN", "direct")]
    gone = cli("delete", "privilege", "-u", "alice", "-n", "LISTEN", "--processor", "p1")
    assert gone.code == ExitCode.NOT_FOUND


def test_listen_and_processor_actions_take_a_grant_on_that_processor(
    cli: Any, world: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for right in ("LISTEN", "PAUSE_PROCESSOR", "READ_CALL"):
        cli.ok("add", "privilege", "-u", "alice", "-n", right, "--processor", "p1")
    as_alice(monkeypatch)
    for name in ("p2", "global"):
        refused = cli("listen", "-n", name, "--count", "1")
        assert refused.code == ExitCode.PERMISSION_DENIED
        assert f"alice lacks the LISTEN right on {name}" in refused.stderr
    dashboard = cli("tui", "--channel", "p1", "--channel", "p2.log")  # refused before it opens
    assert dashboard.code == ExitCode.PERMISSION_DENIED
    assert "alice lacks the LISTEN right on p2.log" in dashboard.stderr
    # Past the check, the pub/sub server is not there (exit 6): never a refusal.
    monkeypatch.setenv("SHELLFLOW_PUBSUB", f"redis://127.0.0.1:{unused_port()}/0")
    assert cli("listen", "-n", "p1", "--count", "1").code == ExitCode.UNAVAILABLE
    assert cli("proc", "pause", "-n", "p2").code == ExitCode.PERMISSION_DENIED
    cli.ok("proc", "pause", "-n", "p1")
    as_owner(monkeypatch)
    statuses = {p["name"]: p["requested_status"] for p in objects(cli, "processors")}
    assert statuses == {"p1": "paused", "p2": "ready"}


def objects(cli: Any, kind: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in cli.ok("ls", kind, "--json").stdout.splitlines()]


def test_by_in_ls_user_is_who_the_audit_trail_says_granted(
    cli: Any, world: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grant's own columns are rewritten here (as a stale or tampered row would be): the
    listing still names who granted, as the append-only trail recorded it."""
    from shellflow.model import access

    boss = access.Principal("boss", rights=frozenset({"ADD_PRIVILEGE"}))
    with monkeypatch.context() as acting:
        acting.setattr(access, "current_principal", lambda *_a, **_k: boss)
        cli.ok("add", "privilege", "-u", "alice", "-n", "READ_CALL", "--processor", "p1")
        cli.ok("add", "privilege", "-u", "alice", "-n", "LS_QUEUES")
        cli.ok("add", "privilege", "-r", "ops", "-n", "LS_NODES")
    trail = {r["name"]: r["when"] for r in objects(cli, "audit") if r["action"] == "grant"}
    from shellflow.model.listing import writer

    with writer(world) as conn:
        for table in ("user_privileges", "user_processor_privileges", "role_privileges"):
            conn.execute(f"UPDATE {table} SET granted_by = 'mallory'")
        conn.execute("INSERT INTO user_privileges (user_id, privilege_id, granted_by)"
                     " SELECT u.id, p.id, 'old-admin' FROM users u, privilege p"
                     " WHERE u.name = 'alice' AND p.name = 'READ_QUEUE'")  # fmt: skip
    shown = json.loads(cli.ok("ls", "user", "-n", "alice", "--json").stdout)
    by = {(e["right"], e["source"]): (e["by"], e["last_updated"]) for e in shown["effective"]}
    assert by == {
        ("LS_NODES", "role ops"): ("boss", trail["LS_NODES"]),
        ("LS_QUEUES", "direct"): ("boss", trail["LS_QUEUES"]),
        ("READ_CALL on p1", "direct"): ("boss", trail["READ_CALL"]),
        ("READ_QUEUE", "direct"): ("old-admin", None),  # older than the trail: its columns
    }
