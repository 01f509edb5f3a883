"""PostgreSQL login roles and row-level security, checked with ``psql`` as each user.

A user with READ_PROCESSOR sees processors and cannot add one; a user with no right sees
nothing and writes nothing; a user with ALL may do both; no user role reads a secret.
Roles are cluster-wide, so every name carries a uuid and every role is dropped at the end
(``_drop_pg_database`` in tests/conftest.py drops what a test's users left).
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import (
    PG_ADMIN_URL,
    PG_HOST,
    PG_PORT,
    _create_pg_database,
    _drop_pg_database,
    require_service,
)


@pytest.fixture
def pg_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty PostgreSQL database of this test's own, its URL in SHELLFLOW_DB."""
    require_service("postgresql")
    name = _create_pg_database()
    monkeypatch.setenv("SHELLFLOW_DB", f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}")
    try:
        yield name
    finally:
        _drop_pg_database(name)


def psql(database: str, user: str, command: str) -> subprocess.CompletedProcess[str]:
    """``psql`` as ``user`` (the server trusts 127.0.0.1: the role is who RLS sees)."""
    return subprocess.run(
        ["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", user, "-d", database,
         "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", command],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def rows(database: str, user: str, command: str) -> list[str]:
    done = psql(database, user, command)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def refused(database: str, user: str, command: str) -> str:
    done = psql(database, user, command)
    assert done.returncode != 0, f"{user} was allowed: {command}"
    return done.stderr


def admin(sql: str, *args: Any) -> list[tuple[Any, ...]]:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_URL, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def role_exists(name: str) -> bool:
    return bool(admin("SELECT 1 FROM pg_roles WHERE rolname = %s", name))


def add_user(flow: Any, name: str, *rights: str) -> None:
    flow.ok("add", "user", "-n", name, "--email", f"{uuid.uuid4().hex}@example.org",
            "--password-stdin", input="s3cret pass\n")  # fmt: skip
    for right in rights:
        flow.ok("add", "privilege", "-u", name, "-n", right)


def test_users_connecting_as_their_role_see_and_change_what_their_rights_allow(
    flow: Any, pg_db: str
) -> None:
    first = flow.ok("db", "init")
    assert "Enabling security on table processor" in first.stderr
    assert "Enabling security on table login" in first.stderr
    again = flow.ok("db", "init")  # idempotent: nothing newly enabled, policies kept
    assert "Enabling security" not in again.stderr
    tag = uuid.uuid4().hex[:8]
    reader, nobody, boss = f"reader.{tag}@example-1:x", f"nobody-{tag}", f"boss_{tag}"
    add_user(flow, reader, "READ_PROCESSOR")
    add_user(flow, nobody)
    add_user(flow, boss, "ALL")
    flow.ok("add", "queue", "-n", "q1")
    flow.ok("config", "set", "repos.allow", "https://example.org/*")  # PostgreSQL: none until set
    flow.ok("add", "processor", "-n", "p1", "-m", "mod", "-g", "https://example.org/r.git")
    insert_queue = (
        "INSERT INTO queue (id, name, durable, reliable, auto_delete, qtype, max_length, "
        "max_length_bytes, status, requested_status, enabled, created, lastupdated, owner) "
        "VALUES ('{id}', '{name}', true, true, false, 'direct', -1, -1, 'ready', 'ready', "
        "true, now(), now(), 'x')"
    )

    assert rows(pg_db, reader, "SELECT name FROM processor") == ["p1"]
    assert rows(pg_db, reader, "SELECT name FROM queue") == []
    assert "row-level security" in refused(
        pg_db, reader, insert_queue.format(id=uuid.uuid4(), name="q2")
    )
    assert rows(pg_db, reader, "UPDATE processor SET description = 'x' RETURNING name") == []
    assert rows(pg_db, reader, "SELECT * FROM shellflow_my_rights") == ["READ_PROCESSOR"]

    for table in ("processor", "queue", "privilege", "users", "call"):
        assert rows(pg_db, nobody, f"SELECT count(*) FROM {table}") == [
            "1" if table == "users" else "0"  # their own user row, nothing else
        ]
    refused(pg_db, nobody, insert_queue.format(id=uuid.uuid4(), name="q3"))
    assert rows(pg_db, nobody, "DELETE FROM processor RETURNING name") == []

    assert sorted(rows(pg_db, boss, "SELECT name FROM queue")) == ["q1"]
    rows(pg_db, boss, insert_queue.format(id=uuid.uuid4(), name="q4"))
    assert sorted(rows(pg_db, boss, "SELECT name FROM queue")) == ["q1", "q4"]
    users = rows(pg_db, boss, "SELECT name FROM users WHERE name <> 'shellflow-agent'")
    assert len(users) == 3  # the three added here (db init made the agents' service user)

    for user in (reader, nobody, boss):  # secrets: not even a user holding ALL
        for secret in ("SELECT * FROM login", "SELECT * FROM passwords",
                       "SELECT * FROM settings", "SELECT password_hash FROM users",
                       "SELECT * FROM users"):  # fmt: skip
            assert "permission denied" in refused(pg_db, user, secret)

    # The owner (the database URL's user) sees everything the users added.
    assert "q4" in flow.ok("ls", "queues").stdout

    for user in (reader, nobody, boss):
        assert role_exists(user)
        flow.ok("delete", "user", "-n", user)
        assert not role_exists(user)


def test_a_revocation_for_one_user_narrows_what_their_role_grants(flow: Any, pg_db: str) -> None:
    flow.ok("db", "init")
    tag = uuid.uuid4().hex[:8]
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    flow.ok("add", "role", "-n", "viewers")
    flow.ok("add", "privilege", "-r", "viewers", "-n", "READ_QUEUE")
    for user in (alice, bob):
        add_user(flow, user)
        flow.ok("update", "user", "-n", user, "--add-role", "viewers")
    flow.ok("add", "queue", "-n", "q1")
    admin_db = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{pg_db}"
    import psycopg2

    with psycopg2.connect(admin_db) as conn, conn.cursor() as cur:  # as `flow delete privilege`
        cur.execute(
            "INSERT INTO user_privileges_revoked (user_id, privilege_id) SELECT u.id, p.id"
            " FROM users u, privilege p WHERE u.name = %s AND p.name = 'READ_QUEUE'",
            (bob,),
        )
    conn.close()
    assert rows(pg_db, alice, "SELECT name FROM queue") == ["q1"]
    assert rows(pg_db, bob, "SELECT name FROM queue") == []
    flow.ok("delete", "user", "-n", alice)
    flow.ok("delete", "user", "-n", bob)


def test_role_follows_renames_and_passwords_and_db_drop(flow: Any, pg_db: str) -> None:
    flow.ok("db", "init")
    tag = uuid.uuid4().hex[:8]
    old, new = f"carol-{tag}", f"carol:{tag}"
    add_user(flow, old, "READ_QUEUE")
    (first,) = admin("SELECT rolpassword FROM pg_authid WHERE rolname = %s", old)
    assert first[0].startswith("SCRAM-SHA-256$")
    flow.ok("update", "user", "-n", old, "--rename", new)
    assert not role_exists(old) and role_exists(new)
    flow.ok("update", "user", "-n", new, "--password-stdin", input="another one\n")
    (second,) = admin("SELECT rolpassword FROM pg_authid WHERE rolname = %s", new)
    assert second[0].startswith("SCRAM-SHA-256$") and second != first
    assert rows(pg_db, new, "SELECT count(*) FROM queue") == ["0"]
    flow.ok("db", "drop", "-y")  # the users go, and their roles with them
    assert not role_exists(new)


def test_a_role_shellflow_did_not_make_is_left_alone(flow: Any, pg_db: str) -> None:
    flow.ok("db", "init")
    name = f"foreign_{uuid.uuid4().hex[:8]}"
    admin(f'CREATE ROLE "{name}" LOGIN')
    try:
        done = flow.ok("add", "user", "-n", name, "--email", f"{name}@example.org",
                       "--password-stdin", input="pw\n")  # fmt: skip
        assert "left alone" in done.stderr
        assert admin("SELECT rolpassword FROM pg_authid WHERE rolname = %s", name) == [(None,)]
        assert "permission denied" in refused(pg_db, name, "SELECT name FROM queue")
        flow.ok("delete", "user", "-n", name)
        assert role_exists(name)
    finally:
        admin(f'DROP ROLE IF EXISTS "{name}"')


@pytest.mark.parametrize("password", ["s3cret pass", "pässwörd ﬁ", "x" * 100])
def test_scram_verifier_is_the_one_the_server_computes(password: str) -> None:
    """The verifier sent instead of the password matches the server's own for that password
    (same salt): the user logs in with the password they gave ``flow add user``."""
    from shellflow.model.pg_roles import scram_verifier

    require_service("postgresql")
    name = f"sf_scram_{uuid.uuid4().hex[:8]}"
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(PG_ADMIN_URL, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SET password_encryption = 'scram-sha-256'")
            cur.execute(sql.SQL("CREATE ROLE {} PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)))  # fmt: skip
            cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (name,))
            (stored,) = cur.fetchone()
    finally:
        admin(f'DROP ROLE IF EXISTS "{name}"')
        conn.close()
    iterations, salt = stored.split("$")[1].split(":")
    assert scram_verifier(password, base64.b64decode(salt), int(iterations)) == stored


def test_a_database_from_before_row_security_gets_it_on_migrate(flow: Any, pg_db: str) -> None:
    """A database initialised by an older shellflow has no policies: a user added there
    reaches no table (a grant would show every row) until ``flow db migrate`` secures it."""
    flow.ok("db", "init")
    tables = [t for (t,) in admin_rows(pg_db, "SELECT tablename FROM pg_tables "
                                             "WHERE schemaname = 'public'")]  # fmt: skip
    disable = "".join(f'ALTER TABLE "{t}" DISABLE ROW LEVEL SECURITY;' for t in tables)
    drop = "DROP FUNCTION shellflow_holds(text[]) CASCADE; DROP VIEW shellflow_my_rights;"
    admin_rows(pg_db, drop + disable)
    flow.ok("add", "queue", "-n", "q1")
    name = f"dave-{uuid.uuid4().hex[:8]}"
    added = flow.ok("add", "user", "-n", name, "--email", f"{name}@example.org",
                    "--password-stdin", input="pw\n")  # fmt: skip
    assert "flow db migrate" in added.stderr
    flow.ok("add", "privilege", "-u", name, "-n", "READ_QUEUE")
    assert "permission denied" in refused(pg_db, name, "SELECT name FROM queue")
    migrated = flow.ok("db", "migrate")
    assert "Enabling security on table queue" in migrated.stderr
    assert rows(pg_db, name, "SELECT name FROM queue") == ["q1"]
    assert rows(pg_db, name, "SELECT count(*) FROM processor") == ["0"]
    flow.ok("delete", "user", "-n", name)
    assert not role_exists(name)


def admin_rows(database: str, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` as the superuser in ``database``."""
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}", connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


@pytest.mark.parametrize("may_create_roles", [True, False])
def test_an_owner_who_is_no_superuser(
    flow: Any, monkeypatch: pytest.MonkeyPatch, may_create_roles: bool
) -> None:
    """The usual deployment: the URL's user owns the database without being a superuser.
    With CREATEROLE it manages its users' roles; without it, users get no role (fail closed)
    and ``flow add user`` says so. The owner still sees every row (it owns the tables)."""
    require_service("postgresql")
    tag = uuid.uuid4().hex[:8]
    owner, user = f"sf_owner_{tag}", f"erin-{tag}"
    power = "CREATEROLE" if may_create_roles else "NOCREATEROLE"
    admin(f'CREATE ROLE "{owner}" LOGIN {power}')
    name = _create_pg_database()
    admin_rows(name, f'ALTER DATABASE "{name}" OWNER TO "{owner}"; '
                     f'ALTER SCHEMA public OWNER TO "{owner}"')  # fmt: skip
    monkeypatch.setenv("SHELLFLOW_DB", f"postgresql://{owner}@{PG_HOST}:{PG_PORT}/{name}")
    try:
        flow.ok("db", "init")
        added = flow.ok("add", "user", "-n", user, "--email", f"{user}@example.org",
                        "--password-stdin", input="pw\n")  # fmt: skip
        flow.ok("add", "privilege", "-u", user, "-n", "READ_QUEUE")
        flow.ok("add", "queue", "-n", "q1")
        assert "q1" in flow.ok("ls", "queues").stdout
        if may_create_roles:
            assert rows(name, user, "SELECT name FROM queue") == ["q1"]
            assert rows(name, user, "SELECT count(*) FROM processor") == ["0"]
            flow.ok("delete", "user", "-n", user)
            assert not role_exists(user)
        else:
            assert "needs CREATEROLE" in added.stderr
            assert not role_exists(user)
    finally:
        _drop_pg_database(name)
        admin(f'DROP ROLE IF EXISTS "{user}"')
        admin(f'DROP ROLE IF EXISTS "{owner}"')


def test_a_user_without_a_role_gets_one_with_a_new_password(flow: Any, pg_db: str) -> None:
    """Users added before shellflow made roles have none; their next password makes it."""
    flow.ok("db", "init")
    name = f"frank-{uuid.uuid4().hex[:8]}"
    add_user(flow, name, "READ_QUEUE")
    admin_rows(pg_db, f'DROP OWNED BY "{name}"; DROP ROLE "{name}"')
    assert not role_exists(name)
    flow.ok("update", "user", "-n", name, "--password-stdin", input="new one\n")
    assert role_exists(name)
    assert rows(pg_db, name, "SELECT count(*) FROM queue") == ["0"]
    flow.ok("delete", "user", "-n", name)
    assert not role_exists(name)


def test_a_grant_on_one_processor_reads_its_calls_and_events_alone(flow: Any, pg_db: str) -> None:
    """READ_CALL on p1 (direct, or through a role): p1's calls and their events, none of
    p2's, none of no socket; a revocation for the user takes it away everywhere."""
    from tests.integration.test_scoped_rights import NETWORK, store_calls

    flow.ok("db", "init")
    flow.ok("config", "set", "repos.allow", "https://example.org/*")
    for args in NETWORK:
        if "user" not in args:
            flow.ok(*args)
    store_calls(f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{pg_db}")
    tag = uuid.uuid4().hex[:8]
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    add_user(flow, alice)
    add_user(flow, bob)
    flow.ok("add", "privilege", "-u", alice, "-n", "READ_CALL", "--processor", "p1")
    flow.ok("update", "user", "-n", bob, "--add-role", "ops")
    flow.ok("add", "privilege", "-r", "ops", "-n", "READ_CALL", "--processor", "p2")

    assert rows(pg_db, alice, "SELECT name FROM call") == ["s1"]
    assert rows(pg_db, alice, "SELECT note FROM event") == ["s1 note"]
    assert rows(pg_db, bob, "SELECT name FROM call") == ["s2"]
    assert rows(pg_db, bob, "SELECT note FROM event") == ["s2 note"]
    (p1,) = admin_rows(pg_db, "SELECT id FROM processor WHERE name = 'p1'")
    ask = f"SELECT shellflow_holds_on('{p1[0]}', 'READ_CALL'), shellflow_holds('READ_CALL')"
    assert rows(pg_db, alice, ask) == ["t|f"]
    assert rows(pg_db, bob, ask) == ["f|f"]

    flow.ok("delete", "privilege", "-u", bob, "-n", "READ_CALL")  # a revocation for bob
    assert rows(pg_db, bob, "SELECT count(*) FROM call") == ["0"]
    assert rows(pg_db, bob, "SELECT count(*) FROM event") == ["0"]
    flow.ok("add", "privilege", "-u", bob, "-n", "READ_CALL")  # everywhere (clears it)
    assert sorted(rows(pg_db, bob, "SELECT name FROM call")) == ["loose", "s1", "s2"]
    for user in (alice, bob):
        flow.ok("delete", "user", "-n", user)
