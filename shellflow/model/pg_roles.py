"""A PostgreSQL login role for every shellflow user (spec: ``CREATE USER joe WITH PASSWORD``).

On PostgreSQL, ``flow add user`` also creates a login role of the same name, so the user can
connect with ``psql`` directly; row-level security (``shellflow.model.rls``) then shows and
lets them change only what their shellflow rights allow. Deleting the user drops the role,
renaming renames it, a new password is the role's new password. On SQLite nothing happens.

Every statement runs in the caller's transaction (role DDL is transactional in PostgreSQL),
so a refused change leaves neither the user row nor the role behind.

Roles belong to the whole cluster, not to one database. So a role is only ever touched when
it carries shellflow's marker (its comment) and no power of its own (superuser, CREATEROLE,
CREATEDB, REPLICATION, BYPASSRLS, or being the database URL's own user): ``flow add user
postgres`` never changes the password of the server's superuser. A role that exists without
the marker is left alone, and the user gets no database login (a note says so). A role with
the marker is shared by the shellflow databases of one cluster that name the same user.

The password is never sent in the clear: the role gets a SCRAM-SHA-256 verifier computed
here (as ``psql``'s ``\\password`` does), so the server's statement log cannot hold it.
Identifiers are quoted with ``psycopg2.sql.Identifier``, values passed as literals.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stringprep
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from shellflow.errors import Conflict, PermissionDenied, ServiceUnavailable

T = TypeVar("T")

MARKER = "shellflow user"
# PostgreSQL truncates longer identifiers (NAMEDATALEN - 1): a longer name gets no role.
ROLE_NAME_LIMIT = 63
SCRAM_ITERATIONS = 4096
_POWERS = "rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls"


def raw_cursor(connection: Any) -> Any:
    """A psycopg2 cursor on a SQLAlchemy Connection or Session, inside its transaction."""
    conn = connection.connection() if hasattr(connection, "get_bind") else connection
    return conn.connection.dbapi_connection.cursor()


@contextmanager
def refusals(name: str) -> Iterator[None]:
    """The server's refusal of a role statement as a shellflow error, never a traceback
    (these run on the driver's cursor, outside SQLAlchemy's error translation)."""
    import psycopg2
    from psycopg2 import errors

    try:
        yield
    except psycopg2.Error as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        what = f"PostgreSQL refused to manage the login role {name!r}: {reason}"
        if isinstance(error, errors.InsufficientPrivilege):
            raise PermissionDenied(what) from error
        if isinstance(error, psycopg2.OperationalError):
            raise ServiceUnavailable("database", "postgresql", reason) from error
        raise Conflict(what) from error


CONTENDED_TRIES = 5  # a role statement raced by another database's, tried again at most so


def _contended(error: Exception) -> bool:
    """Two databases of one cluster changed the same role at once: roles are cluster-wide
    catalog rows, so PostgreSQL refuses the second writer ("tuple concurrently updated", a
    duplicate role name, a serialization failure or a deadlock) rather than waiting."""
    text = str(error)
    code = getattr(error, "pgcode", None)
    return code in ("40001", "40P01") or "tuple concurrently updated" in text or (
        code == "23505" and "pg_authid" in text
    )  # fmt: skip


def contended(cur: Any, name: str, statements: Callable[[], T]) -> T:
    """Run ``statements`` (on ``cur``, in the caller's transaction) in a savepoint, again
    after a short pause when another database's statements on the same role raced them;
    other refusals as :func:`refusals` says."""
    import random
    import time

    import psycopg2

    attempt = 0
    while True:
        attempt += 1
        with refusals(name):
            cur.execute("SAVEPOINT shellflow_role_try")
            try:
                done = statements()
            except psycopg2.Error as error:
                cur.execute("ROLLBACK TO SAVEPOINT shellflow_role_try")
                if attempt >= CONTENDED_TRIES or not _contended(error):
                    raise
            else:
                cur.execute("RELEASE SAVEPOINT shellflow_role_try")
                return done
        time.sleep(random.uniform(0.05, 0.2) * attempt)


def _is_postgresql(session: Any) -> bool:
    return bool(session.get_bind().dialect.name == "postgresql")


def saslprep(password: str) -> str:
    """RFC 4013 SASLprep as PostgreSQL applies it to passwords (``pg_saslprep``).

    ASCII is used as is; a password the profile prohibits is used unchanged, as the server
    does, so both sides always hash the same bytes.
    """
    if password.isascii():
        return password
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c)
    )
    text = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22,
        stringprep.in_table_c3, stringprep.in_table_c4, stringprep.in_table_c5,
        stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
        stringprep.in_table_c9, stringprep.in_table_a1,
    )  # fmt: skip
    if not text or any(check(c) for c in text for check in prohibited):
        return password
    right_to_left = any(stringprep.in_table_d1(c) for c in text)
    if right_to_left and (
        any(stringprep.in_table_d2(c) for c in text)
        or not (stringprep.in_table_d1(text[0]) and stringprep.in_table_d1(text[-1]))
    ):
        return password
    return text


def scram_verifier(
    password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
) -> str:
    """The ``SCRAM-SHA-256$...`` string PostgreSQL stores for ``password`` (RFC 5802/7677)."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    stored_key = hashlib.sha256(client_key).digest()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _role(cur: Any, name: str) -> tuple[bool, bool] | None:
    """(carries shellflow's marker, holds a power of its own), or None when there is none."""
    cur.execute(
        f"SELECT shobj_description(oid, 'pg_authid') = %s, ({_POWERS}) OR rolname = current_user"
        " FROM pg_roles WHERE rolname = %s",
        (MARKER, name),
    )
    row = cur.fetchone()
    return None if row is None else (bool(row[0]), bool(row[1]))


def ours(cur: Any, name: str) -> bool:
    """Whether role ``name`` exists and is one shellflow may change or drop."""
    found = _role(cur, name)
    return found is not None and found[0] and not found[1]


def _can_create_roles(cur: Any) -> bool:
    cur.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
    row = cur.fetchone()
    return bool(row and row[0])


def create(session: Any, name: str, password: str | None) -> str | None:
    """Give user ``name`` a login role (or take over the shellflow role of that name);
    a note for the user when it gets none, else None."""
    if not _is_postgresql(session):
        return None

    if len(name.encode()) > ROLE_NAME_LIMIT:
        return (f"user {name!r} gets no PostgreSQL login role: a role name holds at most "
                f"{ROLE_NAME_LIMIT} characters")  # fmt: skip
    cur = raw_cursor(session)
    return contended(cur, name, lambda: _create(cur, name, password))


def _create(cur: Any, name: str, password: str | None) -> str | None:
    from shellflow.model import rls

    found = _role(cur, name)
    if found is None:
        if not _can_create_roles(cur):
            return (f"user {name!r} gets no PostgreSQL login role: the database user cannot "
                    "create roles (it needs CREATEROLE)")  # fmt: skip
        found = _new_role(cur, name)
    if not (found[0] and not found[1]):
        return (f"PostgreSQL role {name!r} exists and is not a shellflow user's: left alone, "
                "so this user gets no database login of their own")  # fmt: skip
    if password is not None:
        _set_password(cur, name, password)
    if not rls.grant_to(cur, name):
        return (f"user {name!r} can log in to PostgreSQL but reaches no table until "
                "'flow db migrate' enables row-level security on this database")  # fmt: skip
    return None


def _new_role(cur: Any, name: str) -> tuple[bool, bool]:
    """Create the role with the marker; when another database of the cluster created it
    meanwhile (a unique violation once that one commits), the role it made."""
    from psycopg2 import errors, sql

    role = sql.Identifier(name)
    cur.execute("SAVEPOINT shellflow_new_role")
    try:
        cur.execute(
            sql.SQL(
                "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
            ).format(role)
        )
        cur.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(role, sql.Literal(MARKER)))
    except (errors.DuplicateObject, errors.UniqueViolation):
        cur.execute("ROLLBACK TO SAVEPOINT shellflow_new_role")
        return _role(cur, name) or (False, True)
    cur.execute("RELEASE SAVEPOINT shellflow_new_role")
    return True, False


def _set_password(cur: Any, name: str, password: str) -> None:
    from psycopg2 import sql

    verifier = scram_verifier(password)
    cur.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), sql.Literal(verifier))
    )


def set_password(session: Any, name: str, password: str) -> str | None:
    """The user's new password is their role's too. A user without a role (added before
    shellflow made roles) gets one now; a role shellflow does not own is left alone."""
    if not _is_postgresql(session):
        return None
    if len(name.encode()) > ROLE_NAME_LIMIT:
        return None
    cur = raw_cursor(session)

    def statements() -> str | None:
        if _role(cur, name) is None:
            return _create(cur, name, password)
        if ours(cur, name):
            _set_password(cur, name, password)
        return None

    return contended(cur, name, statements)


def rename(session: Any, old: str, new: str) -> str | None:
    """Rename the user's role with the user; a note when the new name cannot be a role."""
    if not _is_postgresql(session):
        return None
    from psycopg2 import sql

    cur = raw_cursor(session)

    def statements() -> str | None:
        if not ours(cur, old):
            return None
        if len(new.encode()) > ROLE_NAME_LIMIT or _role(cur, new) is not None:
            note = drop_role(cur, old)
            return note or (f"user {new!r} has no PostgreSQL login role any more: the name is "
                            "too long for a role or a role of that name exists")  # fmt: skip
        rename = sql.SQL("ALTER ROLE {} RENAME TO {}")
        cur.execute(rename.format(sql.Identifier(old), sql.Identifier(new)))
        return None

    return contended(cur, old, statements)


def drop(session: Any, name: str) -> str | None:
    """Drop the user's role: what it was granted here goes first; a note if it must stay
    (it still holds privileges in another database of the cluster)."""
    if not _is_postgresql(session):
        return None
    cur = raw_cursor(session)
    return contended(cur, name, lambda: drop_role(cur, name) if ours(cur, name) else None)


def drop_role(cur: Any, name: str) -> str | None:
    """Revoke what this database granted ``name``, then drop it if nothing else holds it.

    ``DROP OWNED`` (objects it made, say with a CREATE granted by hand) needs a superuser or
    a member of the role; a database owner with CREATEROLE alone is refused it, and the
    explicit revocation above is then what lets ``DROP ROLE`` through.
    """
    from psycopg2 import sql

    from shellflow.model import rls

    role = sql.Identifier(name)
    rls.revoke_from(cur, name)
    _try(cur, sql.SQL("DROP OWNED BY {}").format(role))
    reason = _try(cur, sql.SQL("DROP ROLE {}").format(role))
    if reason is not None:  # it still holds privileges or objects in another database
        return f"PostgreSQL role {name!r} kept ({reason}); it has no access to this database"
    return None


def _try(cur: Any, statement: Any) -> str | None:
    """Run ``statement`` in a savepoint; the first line of the server's refusal, or None."""
    from psycopg2 import Error

    cur.execute("SAVEPOINT shellflow_role")
    try:
        cur.execute(statement)
    except Error as error:
        cur.execute("ROLLBACK TO SAVEPOINT shellflow_role")
        return (str(error).strip().splitlines() or [type(error).__name__])[0]
    cur.execute("RELEASE SAVEPOINT shellflow_role")
    return None
