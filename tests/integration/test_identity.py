"""Who acts: login, logout, whoami, tokens, the owner by uid, and rights from grants, roles
and revocations (issue 18, point 1 and the rights of point 2), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shellflow.config import default_ini_path, load_settings
from shellflow.errors import ExitCode, PermissionDenied
from shellflow.model.access import current_principal
from shellflow.model.credentials import RIGHTS_SQL, session_path
from shellflow.services import identity

FAILED = "flow: login failed: wrong user or password\n"


def _user(cli: Any, name: str = "joe", password: str = "s3cret-pw") -> None:
    cli.ok("add", "user", "-n", name, "-e", f"{name}@example.org", "--password-stdin",
           input=password + "\n")  # fmt: skip


def _login(cli: Any, name: str = "joe", password: str = "s3cret-pw", *extra: str) -> Any:
    return cli("login", "-u", name, "--password-stdin", *extra, input=password + "\n")


def _whoami(cli: Any) -> dict[str, Any]:
    return json.loads(cli.ok("whoami", "--json").stdout)  # type: ignore[no-any-return]


def test_login_whoami_logout(cli: Any, initialised_db: str) -> None:
    _user(cli)
    assert _whoami(cli)["owner"] is True  # nobody logged in: the owner acts
    result = _login(cli)
    assert result.code == 0, result.stderr
    assert result.stdout == ""
    me = _whoami(cli)
    assert (me["user"], me["source"], me["owner"], me["rights"]) == ("joe", "login", False, [])
    expires = datetime.fromisoformat(me["expires"])
    assert timedelta(hours=11) < expires - datetime.now(UTC) <= timedelta(hours=12)

    path = session_path()
    assert path.parent == default_ini_path().parent
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "s3cret-pw" not in path.read_text()  # the token, never the password
    token = json.loads(path.read_text()).popitem()[1]["token"]
    assert len(token) >= 43  # 32 random bytes, URL-safe
    # The session belongs to this database: another one never sees its token.
    os.environ["SHELLFLOW_DB"] = f"sqlite:///{path.parent / 'other.db'}"
    try:
        assert _whoami(cli)["owner"] is True
    finally:
        os.environ["SHELLFLOW_DB"] = initialised_db

    # A user without the right is refused, with one line naming them and the right.
    refused = cli("add", "queue", "-n", "q1")
    assert refused.code == ExitCode.PERMISSION_DENIED
    assert refused.stderr == "flow: joe lacks the ADD_QUEUE right on q1\n"

    cli.ok("logout")
    assert not path.exists()
    assert _whoami(cli)["owner"] is True
    # The logged-out session was revoked in the database, not only forgotten here.
    os.environ["SHELLFLOW_TOKEN"] = token
    try:
        stale = cli("whoami")
    finally:
        del os.environ["SHELLFLOW_TOKEN"]
    assert stale.code == ExitCode.PERMISSION_DENIED
    assert "was revoked" in stale.stderr and "log in again" in stale.stderr
    assert len(stale.stderr.splitlines()) == 1


def test_a_wrong_user_or_password_fails_alike_and_slows_the_next_attempt(
    cli: Any, initialised_db: str
) -> None:
    _user(cli)
    settings = load_settings()
    wrong_password = _login(cli, "joe", "nope")
    wrong_user = _login(cli, "jim", "s3cret-pw")
    for result in (wrong_password, wrong_user):
        assert (result.code, result.stdout, result.stderr) == (5, "", FAILED)
    assert not session_path().exists()

    assert identity.failure_count(settings, "joe") == 1
    assert identity.failure_count(settings, "jim") == 1  # unknown names are counted too
    assert _login(cli, "joe", "nope again").code == 5
    assert identity.failure_count(settings, "joe") == 2
    from shellflow.model.logins import delay

    assert 0 < delay(1) < delay(2) < delay(3)  # each further failure waits twice as long

    assert _login(cli).code == 0
    assert identity.failure_count(settings, "joe") == 0  # a success starts afresh
    assert identity.failure_count(settings, "jim") == 1


def test_login_needs_a_terminal_or_password_stdin(cli: Any, initialised_db: str) -> None:
    _user(cli)
    result = cli("login", "-u", "joe")
    assert result.code == ExitCode.USAGE
    assert "--password-stdin" in result.stderr


def test_tokens_for_scripts_are_listed_without_secrets_and_revoked(
    cli: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _user(cli)
    cli.ok("add", "privilege", "-u", "joe", "-n", "LS_QUEUES")
    assert _login(cli).code == 0
    created = cli.ok("token", "create", "--expires", "30d", "--name", "ci")
    token = created.stdout.strip()
    assert token.startswith("sf_") and len(created.stdout.splitlines()) == 1
    listed = cli.ok("token", "ls", "--json").stdout
    rows = [json.loads(line) for line in listed.splitlines()]
    assert {(r["kind"], r["name"], r["state"]) for r in rows} == {
        ("session", None, "active"), ("token", "ci", "active")
    }  # fmt: skip
    assert token not in listed and token[3:20] not in listed
    ci = next(r for r in rows if r["name"] == "ci")
    lasts = datetime.fromisoformat(ci["expires"]) - datetime.fromisoformat(ci["created"])
    assert timedelta(days=29) < lasts <= timedelta(days=30)
    cli.ok("logout")

    monkeypatch.setenv("SHELLFLOW_TOKEN", token)
    me = _whoami(cli)
    assert (me["user"], me["source"], me["rights"]) == ("joe", "SHELLFLOW_TOKEN", ["LS_QUEUES"])
    cli.ok("ls", "queues")
    cli.ok("token", "revoke", "ci")
    refused = cli("ls", "queues")
    assert refused.code == ExitCode.PERMISSION_DENIED
    assert "SHELLFLOW_TOKEN was revoked" in refused.stderr and "log in again" in refused.stderr

    monkeypatch.delenv("SHELLFLOW_TOKEN")
    assert cli("token", "create").code == ExitCode.USAGE  # the owner names whose token


def test_an_expired_token_is_refused(cli: Any, initialised_db: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from shellflow.model import logins
    from shellflow.model.db import session_scope

    _user(cli)
    with session_scope(initialised_db) as session:
        user = logins.user_named(session, "joe")
        token = logins.open_login(session, user, "token", datetime.now(UTC) - timedelta(1))
    monkeypatch.setenv("SHELLFLOW_TOKEN", token)
    result = cli("whoami")
    assert result.code == ExitCode.PERMISSION_DENIED
    assert "expired at" in result.stderr and "log in again" in result.stderr
    monkeypatch.setenv("SHELLFLOW_TOKEN", "sf_never-issued")
    assert cli("whoami").code == ExitCode.PERMISSION_DENIED


def test_rights_are_direct_and_role_grants_less_revocations(
    cli: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _user(cli)
    _user(cli, "ann")
    cli.ok("add", "role", "-n", "dev")
    cli.ok("add", "privilege", "-r", "dev", "-n", "RUN_TASK")
    cli.ok("add", "privilege", "-r", "dev", "-n", "LS_QUEUES")
    cli.ok("update", "user", "-n", "joe", "--add-role", "dev")
    cli.ok("update", "user", "-n", "ann", "--add-role", "dev")
    cli.ok("add", "privilege", "-u", "joe", "-n", "ADD_QUEUE")

    def rights(name: str) -> set[str]:
        from shellflow.model.listing import reader

        with reader(initialised_db) as conn:
            uid = conn.query("SELECT id FROM users WHERE name = ?", [name])[0][0]
            return {r[0] for r in conn.query(RIGHTS_SQL, [uid] * 3)}

    assert rights("joe") == {"RUN_TASK", "LS_QUEUES", "ADD_QUEUE"}
    # A role's right taken from one user is a revocation for that user alone.
    deleted = cli.ok("delete", "privilege", "-u", "joe", "-n", "RUN_TASK")
    assert "revoked for this user alone" in deleted.stderr
    assert rights("joe") == {"LS_QUEUES", "ADD_QUEUE"}
    assert rights("ann") == {"RUN_TASK", "LS_QUEUES"}
    # A direct grant is removed; one neither held nor granted is not found (exit 3).
    cli.ok("delete", "privilege", "-u", "joe", "-n", "ADD_QUEUE")
    assert rights("joe") == {"LS_QUEUES"}
    assert cli("delete", "privilege", "-u", "joe", "-n", "ADD_QUEUE").code == ExitCode.NOT_FOUND
    assert cli("delete", "privilege", "-u", "joe", "-n", "RUN_TASK").code == ExitCode.NOT_FOUND

    shown = json.loads(cli.ok("ls", "user", "-n", "joe", "--json").stdout)
    owner = current_principal().name
    effective = {(e["right"], e["source"], e["by"]) for e in shown["effective"]}
    assert effective == {("LS_QUEUES", "role dev", owner), ("RUN_TASK", "revoked", owner)}
    assert all(datetime.fromisoformat(e["last_updated"]) for e in shown["effective"])
    table = cli.ok("ls", "user", "-n", "joe").stdout  # key<TAB>value off a terminal
    assert "effective" in table

    # The principal a login gives carries exactly those rights.
    assert _login(cli).code == 0
    assert set(_whoami(cli)["rights"]) == {"LS_QUEUES"}
    assert cli("task", "run", "-s", "nothing").code in (ExitCode.PERMISSION_DENIED,
                                                        ExitCode.NOT_FOUND)  # fmt: skip
    cli.ok("logout")
    # Granting again clears the revocation.
    granted = cli.ok("add", "privilege", "-u", "joe", "-n", "RUN_TASK")
    assert granted.stderr == "Privilege RUN_TASK granted to 'joe' (its revocation cleared)\n"
    assert rights("joe") == {"LS_QUEUES", "RUN_TASK"}
    shown = json.loads(cli.ok("ls", "user", "-n", "joe", "--json").stdout)
    assert "revoked" not in {e["source"] for e in shown["effective"]}


def test_db_init_creates_the_agents_service_identity(
    cli: Any, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli.ok("db", "init")
    path = identity.service_token_path(load_settings())
    assert str(path) in result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.setenv("SHELLFLOW_TOKEN", path.read_text().strip())
    me = _whoami(cli)
    assert (me["user"], me["owner"]) == (identity.SERVICE_USER, False)
    assert set(me["rights"]) == set(identity.SERVICE_RIGHTS)
    assert cli("db", "drop", "-y").code == ExitCode.PERMISSION_DENIED  # it may only serve
    monkeypatch.delenv("SHELLFLOW_TOKEN")
    path.unlink()
    cli.ok("db", "init")  # an initialised database: nothing changes, no new token
    assert not path.exists()


def test_the_service_token_is_kept_beside_the_configuration_in_effect(
    cli: Any, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A home set up with its own SHELLFLOW_INI keeps its agent token there, and leaves the
    # user's default configuration folder alone.
    monkeypatch.setenv("SHELLFLOW_INI", str(tmp_path / "net" / "shellflow.ini"))
    result = cli.ok("db", "init")
    path = tmp_path / "net" / identity.SERVICE_TOKEN_FILE
    assert str(path) in result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (default_ini_path().parent / identity.SERVICE_TOKEN_FILE).exists()


def test_the_owner_is_named_by_uid_not_by_logname(
    cli: Any, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pwd

    cli.ok("db", "init")
    monkeypatch.setenv("LOGNAME", "alice")
    monkeypatch.setenv("USER", "alice")
    me = current_principal()
    assert me.local_owner
    if db_url.startswith("postgresql"):  # the role of the URL
        assert (me.source, me.name) == ("database URL", "postgres")
    else:
        assert (me.source, me.name) == ("os user", pwd.getpwuid(os.geteuid()).pw_name)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the home to another uid")
def test_another_local_user_without_a_login_is_not_the_owner(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever's uid differs from the embedded home's owner holds no right: here the home
    and its database are handed to ``nobody`` and root, running flow, is the stranger."""
    import pwd

    home = tmp_path / "shared-home"
    monkeypatch.setenv("SHELLFLOW_HOME", str(home))
    cli.ok("db", "init")
    cli.ok("add", "queue", "-n", "q1")
    nobody = pwd.getpwnam("nobody").pw_uid
    monkeypatch.setenv("LOGNAME", "nobody")  # an environment variable names nobody
    for path in (home, *home.iterdir()):
        os.chown(path, nobody, -1)
    me = _whoami(cli)
    assert (me["user"], me["owner"], me["rights"]) == ("root", False, [])
    refused = cli("ls", "queues")
    assert refused.code == ExitCode.PERMISSION_DENIED
    assert refused.stderr.startswith("flow: root lacks the LS_QUEUES right")
    assert refused.stderr.count("\n") == 1
    for path in (home, *home.iterdir()):
        os.chown(path, 0, -1)
    assert _whoami(cli)["owner"] is True
    cli.ok("ls", "queues")


def test_a_refused_token_is_never_replaced_by_the_owner(
    initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHELLFLOW_TOKEN", "sf_garbage")
    with pytest.raises(PermissionDenied):
        current_principal()


def test_another_users_tokens_need_the_right(
    cli: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _user(cli)
    _user(cli, "ann")
    ann_token = cli.ok("token", "create", "-u", "ann", "--name", "build").stdout.strip()
    assert _login(cli).code == 0
    # joe may not list, create or revoke ann's tokens...
    for args in (("token", "ls", "-u", "ann"), ("token", "create", "-u", "ann"),
                 ("token", "revoke", "build", "-u", "ann"), ("token", "ls", "--all")):  # fmt: skip
        refused = cli(*args)
        assert refused.code == ExitCode.PERMISSION_DENIED, args
        assert refused.stderr.startswith("flow: joe lacks the ")
    # ...nor revoke it by its name among his own (he has none so named).
    assert cli("token", "revoke", "build").code == ExitCode.NOT_FOUND
    cli.ok("logout")
    monkeypatch.setenv("SHELLFLOW_TOKEN", ann_token)
    assert _whoami(cli)["user"] == "ann"
    cli.ok("token", "revoke", "build")  # one's own, without any right
    assert cli("whoami").code == ExitCode.PERMISSION_DENIED
