"""Users, roles and privileges through ``flow add | ls | update | delete`` (spec 10.1.8-9)."""

from __future__ import annotations

from typing import Any

from objects_support import ls_json, names, show, sql

from shellflow.model.passwords import verify_password
from shellflow.model.rights import RIGHTS


def _hash_of(url: str, user: str) -> str:
    rows = sql(url, "SELECT password_hash FROM users WHERE name = :n", n=user)
    assert len(rows) == 1
    return str(rows[0][0])


def test_password_is_stored_as_an_argon2_hash_only(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "user", "-n", "joe", "-e", "joe@xyz", "-p", "12345-secret")
    stored = _hash_of(initialised_db, "joe")
    assert stored.startswith("$argon2")
    assert verify_password(stored, "12345-secret")
    assert not verify_password(stored, "12345-other")
    row = sql(initialised_db, "SELECT * FROM users WHERE name = 'joe'")[0]
    assert not any("12345-secret" in str(value) for value in row)
    shown = cli.ok("ls", "user", "-n", "joe", "--json").stdout
    assert "12345-secret" not in shown and "argon2" not in shown


def test_password_from_stdin_and_changed_by_update(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "user", "-n", "ann", "-e", "ann@xyz", "--password-stdin", input="from stdin\n")
    assert verify_password(_hash_of(initialised_db, "ann"), "from stdin")
    cli.ok("update", "user", "-n", "ann", "--password-stdin", input="second\n")
    assert verify_password(_hash_of(initialised_db, "ann"), "second")
    cli.ok("update", "user", "-n", "ann", "-p", "third")
    assert verify_password(_hash_of(initialised_db, "ann"), "third")


def test_missing_password_without_a_terminal_is_a_usage_error(
    cli: Any, initialised_db: str
) -> None:
    assert cli("add", "user", "-n", "ann", "-e", "ann@xyz").code == 2
    empty = cli("add", "user", "-n", "ann", "-e", "ann@xyz", "--password-stdin", input="")
    assert empty.code == 2
    assert names(cli, "users") == []


def test_email_is_unique_on_add_and_update(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "user", "-n", "joe", "-e", "joe@xyz", "-p", "pw")
    cli.ok("add", "user", "-n", "ann", "-e", "ann@xyz", "-p", "pw")
    dup = cli("add", "user", "-n", "bob", "-e", "joe@xyz", "-p", "pw")
    assert dup.code == 4 and "joe@xyz" in dup.stderr
    moved = cli("update", "user", "-n", "ann", "-e", "joe@xyz")
    assert moved.code == 4
    assert "joe@xyz" in moved.stderr and "constraint" not in moved.stderr.lower()
    assert {u["name"]: u["email"] for u in ls_json(cli, "users")} == {
        "ann": "ann@xyz", "joe": "joe@xyz"
    }  # fmt: skip
    cli.ok("update", "user", "-n", "joe", "-e", "joe@xyz")  # its own address is no conflict


def test_roles_are_given_and_taken_away(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "user", "-n", "joe", "-e", "joe@xyz", "-p", "pw")
    cli.ok("add", "role", "-n", "developer")
    cli.ok("add", "role", "-n", "ops")
    cli.ok("update", "user", "-n", "joe", "--add-role", "developer", "--add-role", "ops")
    assert show(cli, "user", "joe")["roles"] == ["developer", "ops"]
    cli.ok("update", "user", "-n", "joe", "--remove-role", "developer")
    assert show(cli, "user", "joe")["roles"] == ["ops"]
    unknown = cli("update", "user", "-n", "joe", "--add-role", "developr", "--remove-role", "ops")
    assert unknown.code == 3 and "did you mean 'developer'" in unknown.stderr
    assert show(cli, "user", "joe")["roles"] == ["ops"]  # the failed update changed nothing
    held = cli("update", "user", "-n", "joe", "--add-role", "ops")
    assert held.code == 4 and "'ops'" in held.stderr
    not_held = cli("update", "user", "-n", "joe", "--remove-role", "developer")
    assert not_held.code == 3 and "'developer'" in not_held.stderr
    assert show(cli, "user", "joe")["roles"] == ["ops"]
    cli.ok("delete", "role", "-n", "ops")
    assert show(cli, "user", "joe")["roles"] == []


def test_privileges_granted_listed_and_revoked(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "user", "-n", "joe", "-e", "joe@xyz", "-p", "pw")
    cli.ok("add", "role", "-n", "developer")
    cli.ok("add", "privilege", "-u", "joe", "-n", "ADD_PROCESSOR")
    cli.ok("add", "privilege", "-u", "joe", "-n", "LS_PROCESSORS")
    cli.ok("add", "privilege", "-r", "developer", "-n", "ADD_PROCESSOR")
    grants = [(p["name"], p["user"], p["role"]) for p in ls_json(cli, "privileges")]
    assert grants == [
        ("ADD_PROCESSOR", None, "developer"),
        ("ADD_PROCESSOR", "joe", None),
        ("LS_PROCESSORS", "joe", None),
    ]
    assert ls_json(cli, "privilege") == ls_json(cli, "privileges")
    assert show(cli, "user", "joe")["privileges"] == ["ADD_PROCESSOR", "LS_PROCESSORS"]
    assert show(cli, "role", "developer")["privileges"] == ["ADD_PROCESSOR"]
    tsv = cli.ok("ls", "privilege", "-n", "ADD_PROCESSOR").stdout.splitlines()
    assert tsv == ["ADD_PROCESSOR\t\tdeveloper\t", "ADD_PROCESSOR\tjoe\t\t"]

    assert cli("add", "privilege", "-u", "joe", "-n", "ADD_PROCESSOR").code == 4
    cli.ok("delete", "privilege", "-u", "joe", "-n", "ADD_PROCESSOR")
    assert show(cli, "user", "joe")["privileges"] == ["LS_PROCESSORS"]
    assert show(cli, "role", "developer")["privileges"] == ["ADD_PROCESSOR"]
    assert cli("delete", "privilege", "-u", "joe", "-n", "ADD_PROCESSOR").code == 3
    cli.ok("delete", "privilege", "-r", "developer", "-n", "ADD_PROCESSOR")
    assert cli("ls", "privilege", "-n", "ADD_PROCESSOR").code == 3


def test_privilege_needs_one_known_holder_and_a_known_right(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "user", "-n", "joe", "-e", "joe@xyz", "-p", "pw")
    cli.ok("add", "role", "-n", "developer")
    assert cli("add", "privilege", "-u", "joe", "-n", "NOT_A_RIGHT").code == 2
    assert cli("add", "privilege", "-u", "joe", "-n", "EDIT_PROCESSOR_CODELS_PROCESSORS").code == 2
    assert cli("add", "privilege", "-n", "ALL").code == 2
    assert cli("add", "privilege", "-u", "joe", "-r", "developer", "-n", "ALL").code == 2
    assert cli("delete", "privilege", "-n", "ALL").code == 2
    unknown = cli("add", "privilege", "-u", "jo", "-n", "ALL")
    assert unknown.code == 3 and "did you mean 'joe'" in unknown.stderr
    assert ls_json(cli, "privileges") == []


def test_add_privilege_json_is_the_grant_just_made(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "user", "-n", "zed", "-e", "zed@xyz", "-p", "pw")
    cli.ok("add", "role", "-n", "admins")
    cli.ok("add", "privilege", "-r", "admins", "-n", "ALL")
    import json

    out = cli.ok("add", "privilege", "-u", "zed", "-n", "ALL", "--json").stdout
    assert json.loads(out) == {"name": "ALL", "user": "zed", "role": None, "processor": None}


def test_ls_rights_lists_every_right_once(cli: Any, initialised_db: str) -> None:
    rights = cli.ok("ls", "rights").stdout.splitlines()
    assert rights == list(RIGHTS)
    assert len(set(rights)) == len(rights)
    assert {"EDIT_PROCESSOR_CODE", "LS_PROCESSORS", "ADD_PROCESSOR", "READ_USER"} <= set(rights)
    assert not any("CODELS" in r for r in rights)


def test_deleting_a_user_drops_its_grants(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "user", "-n", "joe", "-e", "joe@xyz", "-p", "pw")
    cli.ok("add", "role", "-n", "developer")
    cli.ok("update", "user", "-n", "joe", "--add-role", "developer")
    cli.ok("add", "privilege", "-u", "joe", "-n", "ALL")
    cli.ok("delete", "user", "-n", "joe")
    assert ls_json(cli, "users") == [] and ls_json(cli, "privileges") == []
    assert sql(initialised_db, "SELECT COUNT(*) FROM user_roles") == [(0,)]
    assert names(cli, "roles") == ["developer"]


def test_processor_password_is_hashed(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "processor", "-n", "p", "-g", "repo", "-m", "mod", "-p", "proc-secret")
    rows = sql(initialised_db, "SELECT w.hash FROM processor p JOIN passwords w"
                               " ON w.id = p.password_id")  # fmt: skip
    assert len(rows) == 1 and verify_password(rows[0][0], "proc-secret")
    cli.ok("update", "processor", "-n", "p", "-p", "new-secret")
    rows = sql(initialised_db, "SELECT hash FROM passwords")
    assert len(rows) == 1 and verify_password(rows[0][0], "new-secret")
