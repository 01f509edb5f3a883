"""SASLprep as PostgreSQL applies it before hashing a password (no database needed; the
server's own verifiers are compared in tests/integration/test_row_security.py)."""

from __future__ import annotations

import base64

import pytest

from shellflow.model.pg_roles import saslprep, scram_verifier


def test_ascii_is_used_as_is() -> None:
    assert saslprep("  Tab\tand spaces ") == "  Tab\tand spaces "


def test_non_ascii_is_mapped_and_normalised() -> None:
    assert saslprep("a\u00adb") == "ab"  # soft hyphen: mapped to nothing
    assert saslprep("a\u00a0b") == "a b"  # no-break space: a space
    assert saslprep("\ufb01x") == "fix"  # the fi ligature: NFKC


def test_a_prohibited_password_is_hashed_unchanged_as_the_server_does() -> None:
    assert saslprep("a\u200eb\u00e9") == "a\u200eb\u00e9"  # a left-to-right mark


def test_the_verifier_has_postgresql_form_and_a_fresh_salt() -> None:
    first, second = scram_verifier("pw"), scram_verifier("pw")
    assert first != second
    kind, iterations_salt, keys = first.split("$")
    iterations, salt = iterations_salt.split(":")
    assert (kind, iterations, len(base64.b64decode(salt))) == ("SCRAM-SHA-256", "4096", 16)
    assert scram_verifier("pw", base64.b64decode(salt)) == first
    assert all(len(base64.b64decode(k)) == 32 for k in keys.split(":"))


def test_a_role_statement_raced_by_another_database_is_tried_again_in_a_savepoint() -> None:
    """Roles are cluster-wide: two databases granting one role at once make the second
    fail ("tuple concurrently updated"); only such races are tried again."""
    import psycopg2

    from shellflow.errors import Conflict
    from shellflow.model import pg_roles

    class Raced(psycopg2.Error):
        def __str__(self) -> str:
            return "tuple concurrently updated"

    class Cursor:
        def __init__(self) -> None:
            self.executed: list[str] = []

        def execute(self, statement: str) -> None:
            self.executed.append(statement)

    assert pg_roles._contended(Raced())
    assert not pg_roles._contended(psycopg2.Error("permission denied to create role"))
    cur = Cursor()
    tries: list[int] = []

    def statements() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise Raced()
        return "done"

    assert pg_roles.contended(cur, "alice", statements) == "done"
    assert len(tries) == 3
    assert cur.executed.count("ROLLBACK TO SAVEPOINT shellflow_role_try") == 2
    assert cur.executed[-1] == "RELEASE SAVEPOINT shellflow_role_try"

    def refused() -> str:
        raise psycopg2.Error("must be owner of role alice")

    with pytest.raises(Conflict, match="must be owner"):
        pg_roles.contended(Cursor(), "alice", refused)  # not a race: refused at once
