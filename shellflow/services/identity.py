"""Logging in and out, tokens, and the agents' service identity.

Every login attempt ends in :func:`login_succeeded` or :func:`login_failed`: the one place
where an audit trail records logins (nothing else needs to change to audit them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shellflow.errors import PermissionDenied, UsageError

if TYPE_CHECKING:
    from shellflow.config import Settings
    from shellflow.model.access import Principal
    from shellflow.model.logins import LoginRow

LOGIN_FAILED = "login failed: wrong user or password"
SESSION_LIFETIME = timedelta(hours=12)
SERVICE_USER = "shellflow-agent"
SERVICE_TOKEN_FILE = "agent.token"
# What an agent (and the workers it starts) does: register itself and its node, read the
# processors it serves with their queues, sockets and plugs, report their status, start,
# stop, pause and resume them, and run the tasks plugs forward.
SERVICE_RIGHTS = (
    "START_AGENT", "LS_AGENTS", "READ_AGENT", "UPDATE_AGENT", "READ_NODE", "UPDATE_NODE",
    "READ_PROCESSOR", "UPDATE_PROCESSOR", "START_PROCESSOR", "STOP_PROCESSOR",
    "PAUSE_PROCESSOR", "RESUME_PROCESSOR", "READ_QUEUE", "READ_SOCKET", "READ_PLUG",
    "RUN_TASK",
)  # fmt: skip


@dataclass(frozen=True)
class LoggedIn:
    user: str
    expires: datetime | None
    session_file: Path


def login_succeeded(settings: Settings, user: str) -> None:
    """A login succeeded: a ``login`` row in the audit trail."""
    _audit(settings, user, ok=True)


def login_failed(settings: Settings, user: str) -> None:
    """A login failed, whether the user or the password was wrong: a ``login_failed`` row
    (naming the user tried, never why)."""
    _audit(settings, user, ok=False)


def _audit(settings: Settings, user: str, ok: bool) -> None:
    """The trail is evidence, not a gate: a login is not refused because its row could not
    be written (the failure is logged)."""
    from shellflow.model.audit import audit_login

    try:
        audit_login(settings.db, user, ok)
    except Exception as exc:
        import logging

        logging.getLogger(__name__).warning("login of %r not audited: %s", user, exc)


def login(
    settings: Settings, user: str, password: str, lifetime: timedelta | None = SESSION_LIFETIME
) -> LoggedIn:
    """Check the password and keep a new session's token in the session file.

    A wrong user and a wrong password fail alike (exit 5, :data:`LOGIN_FAILED`). An attempt
    for a name that failed before first waits (see :func:`shellflow.model.logins.delay`).
    """
    from shellflow.model import logins
    from shellflow.model.credentials import write_session
    from shellflow.model.db import session_scope

    with session_scope(settings.db) as session:
        wait = logins.wait_needed(session, user)
    if wait > 0:
        time.sleep(wait)
    expires = datetime.now(UTC) + lifetime if lifetime else None
    with session_scope(settings.db) as session:
        found = logins.check_password(session, user, password)
        token = logins.open_login(session, found, "session", expires) if found else None
    if token is None:
        login_failed(settings, user)
        raise PermissionDenied(LOGIN_FAILED)
    path = write_session(settings.db, token, user, expires)
    login_succeeded(settings, user)
    return LoggedIn(user, expires, path)


def logout(settings: Settings) -> str | None:
    """Revoke this database's session and forget it; the user it was for, if any."""
    from shellflow.model.credentials import forget_session

    entry = forget_session(settings.db)
    if entry is None:
        return None
    from shellflow.errors import ShellflowError
    from shellflow.model import logins
    from shellflow.model.db import session_scope

    try:
        with session_scope(settings.db) as session:
            logins.revoke_digest(session, entry["token"])
    except ShellflowError:  # the file is gone; an unreachable database keeps the session
        pass  # until it expires, which this client cannot change now
    return str(entry.get("user") or "")


def failure_count(settings: Settings, user: str) -> int:
    """Consecutive failed logins recorded for ``user`` (0 after a success)."""
    from shellflow.model import logins
    from shellflow.model.db import session_scope

    with session_scope(settings.db) as session:
        return logins.failures_of(session, user)[0]


def _target(principal: Principal, user: str | None, right: str) -> str:
    """Whose tokens: one's own, or (with ``right``, or as the owner) another user's."""
    from shellflow.model.access import authorize

    if user is None:
        if principal.user_id is None:
            raise UsageError("name the user with --user (the owner is no database user)")
        return principal.name
    if user != principal.name or principal.user_id is None:
        authorize(principal, right, f"user {user}")
    return user


def create_token(
    settings: Settings, principal: Principal, user: str | None, name: str | None,
    lifetime: timedelta | None,
) -> tuple[str, datetime | None]:  # fmt: skip
    """A new token for scripts (``SHELLFLOW_TOKEN``): (the token, shown once; its expiry)."""
    from shellflow.model import logins
    from shellflow.model.db import session_scope

    whose = _target(principal, user, "UPDATE_USER")
    expires = datetime.now(UTC) + lifetime if lifetime else None
    with session_scope(settings.db) as session:
        token = logins.open_login(session, logins.user_named(session, whose), "token", expires,
                                  name)  # fmt: skip
    return token, expires


def list_tokens(settings: Settings, principal: Principal, user: str | None,
                everyone: bool) -> list[LoginRow]:  # fmt: skip
    from shellflow.model import logins
    from shellflow.model.access import authorize
    from shellflow.model.db import session_scope

    if everyone:
        authorize(principal, "LS_USERS")
        whose = None
    else:
        whose = _target(principal, user, "LS_USERS")
    with session_scope(settings.db) as session:
        if whose is not None:
            logins.user_named(session, whose)  # NotFound (exit 3), not a list that looks empty
        return logins.list_logins(session, whose)


def revoke_token(settings: Settings, principal: Principal, ident: str,
                 user: str | None) -> LoginRow:  # fmt: skip
    from shellflow.model import logins
    from shellflow.model.db import session_scope

    if principal.user_id is None:  # the owner (or an OS user who is nobody here)
        from shellflow.model.access import authorize

        authorize(principal, "UPDATE_USER", f"user {user}" if user else "tokens")
        whose = user
    else:
        whose = _target(principal, user, "UPDATE_USER")
    with session_scope(settings.db) as session:
        return logins.revoke(session, ident, whose)


def service_token_path(settings: Settings) -> Path:
    """Beside the configuration file in effect (``-i``, ``SHELLFLOW_INI`` or the default),
    so a home set up for one network keeps its agent token with its settings instead of
    overwriting the user's default one."""
    return settings.ini_path.parent / SERVICE_TOKEN_FILE


def ensure_service_identity(settings: Settings, owner: str) -> Path | None:
    """Create the agents' user (:data:`SERVICE_USER`) holding :data:`SERVICE_RIGHTS`, with
    a token written 0600 to :func:`service_token_path`; the file when one was written.

    The user has no usable password (a random one, never shown): it acts only by token.
    """
    import secrets

    from shellflow.model import logins
    from shellflow.model.db import session_scope
    from shellflow.model.store import Store

    with session_scope(settings.db) as session:
        store = Store(session, owner)
        if store.find("user", SERVICE_USER) is not None:
            return None
        store.login_roles = False  # it acts by token through shellflow, never with psql
        store.add("user", {"name": SERVICE_USER, "email": f"{SERVICE_USER}@localhost",
                           "password": secrets.token_urlsafe(32)})  # fmt: skip
        for right in SERVICE_RIGHTS:
            store.grant(right, SERVICE_USER, None)
        session.flush()
        token = logins.open_login(session, logins.user_named(session, SERVICE_USER), "token",
                                  None, "agent")  # fmt: skip
    path = service_token_path(settings)
    _write_secret(path, token)
    return path


def _write_secret(path: Path, text: str) -> None:
    import os

    from shellflow.errors import CallFailed

    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    except OSError as exc:
        raise CallFailed(f"cannot write {path}: {exc.strerror}") from exc


def whoami(principal: Principal) -> dict[str, Any]:
    """What ``flow whoami`` shows (a right held on one processor alone: ``READ_CALL on p1``)."""
    on = sorted(f"{right} on {name}" for right, names in principal.scoped.items() for name in names)
    return {
        "user": principal.name,
        "source": principal.source,
        "owner": principal.local_owner,
        "expires": principal.expires.isoformat() if principal.expires else None,
        "rights": ["ALL"] if principal.local_owner else sorted(principal.rights) + on,
    }
