"""Who acts: the session file, tokens, and the principal they name.

Kept light (no SQLAlchemy: every ``flow`` resolves its principal through here, through the
driver-level :class:`shellflow.model.listing.Reader`).

A token is 32 random bytes (URL-safe text after ``sf_``); the database keeps only its SHA-256
digest (``login.token_hash``), so a copy of the database gives no usable token. The client
keeps the token of its session in ``sessions.json`` next to the ini file (the XDG config
folder), mode 0600, one entry per database (keyed by the digest of the database URL, so the
file names no server and a session is never presented to another database). Never a
password.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shellflow.errors import CallFailed, PermissionDenied

if TYPE_CHECKING:
    from shellflow.config import Settings
    from shellflow.model.access import Principal
    from shellflow.model.listing import Reader

TOKEN_ENV = "SHELLFLOW_TOKEN"
TOKEN_PREFIX = "sf_"
SESSION_FILE = "sessions.json"

# The effective rights of a user, in one query: its own grants and its roles' grants, less
# the rights revoked for it alone (``user_privileges_revoked``).
RIGHTS_SQL = (
    'SELECT p."right" FROM privilege p JOIN user_privileges x ON x.privilege_id = p.id'
    " WHERE x.user_id = ?"
    ' UNION SELECT p."right" FROM privilege p JOIN role_privileges x ON x.privilege_id = p.id'
    " JOIN user_roles ur ON ur.role_id = x.role_id WHERE ur.user_id = ?"
    ' EXCEPT SELECT p."right" FROM privilege p JOIN user_privileges_revoked x'
    " ON x.privilege_id = p.id WHERE x.user_id = ?"
)
# Who a token names and their rights, in one round trip: the login row with its user, and
# one row per effective right (its processor's name when granted on one processor alone),
# its user picked by the same token; a right revoked for the user is left out everywhere.
_OWNER_OF = "(SELECT o.user_id FROM login o WHERE o.token_hash = ?)"
_GRANTS = (
    "SELECT x.user_id AS uid, x.privilege_id AS pid, CAST(NULL AS VARCHAR(200)) AS proc"
    " FROM user_privileges x WHERE x.user_id = "
    + _OWNER_OF
    + " UNION SELECT ur.user_id, x.privilege_id, NULL FROM role_privileges x"
    " JOIN user_roles ur ON ur.role_id = x.role_id WHERE ur.user_id = "
    + _OWNER_OF
    + " UNION SELECT x.user_id, x.privilege_id, o.name FROM user_processor_privileges x"
    " JOIN processor o ON o.id = x.processor_id WHERE x.user_id = "
    + _OWNER_OF
    + " UNION SELECT ur.user_id, x.privilege_id, o.name FROM role_processor_privileges x"
    " JOIN user_roles ur ON ur.role_id = x.role_id JOIN processor o ON o.id = x.processor_id"
    " WHERE ur.user_id = " + _OWNER_OF
)
_TOKEN_SQL = (
    "SELECT l.expires, l.revoked, u.id, u.name, p.\"right\", g.proc FROM login l"
    " JOIN users u ON u.id = l.user_id LEFT JOIN (" + _GRANTS + ") g ON g.uid = u.id"
    " AND NOT EXISTS (SELECT 1 FROM user_privileges_revoked v"
    " WHERE v.user_id = g.uid AND v.privilege_id = g.pid)"
    " LEFT JOIN privilege p ON p.id = g.pid WHERE l.token_hash = ?"
)  # fmt: skip


def new_token() -> str:
    """A fresh token: 32 random bytes, shown once and stored only as a digest."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def aware(raw: Any) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands back naive text)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = datetime.fromisoformat(raw)
    return raw.replace(tzinfo=UTC) if raw.tzinfo is None else raw.astimezone(UTC)


# -- the session file -----------------------------------------------------------------------
def session_path() -> Path:
    from shellflow.config import default_ini_path

    return default_ini_path().parent / SESSION_FILE


def _read_sessions(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # an unreadable or damaged file holds no session: log in again
    return data if isinstance(data, dict) else {}


def read_session(db_url: str) -> dict[str, Any] | None:
    """The session kept for this database: ``{"token", "user", "expires"}``, or None."""
    entry = _read_sessions(session_path()).get(digest(db_url))
    return entry if isinstance(entry, dict) and isinstance(entry.get("token"), str) else None


def _write_sessions(path: Path, sessions: dict[str, Any]) -> None:
    """Written atomically, 0600 from its creation (never readable by others, even briefly)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(sessions, handle)
        os.replace(tmp, path)
    except OSError as exc:
        raise CallFailed(f"cannot write the session file {path}: {exc.strerror}") from exc


def write_session(db_url: str, token: str, user: str, expires: datetime | None) -> Path:
    path = session_path()
    sessions = _read_sessions(path)
    sessions[digest(db_url)] = {
        "token": token,
        "user": user,
        "expires": expires.isoformat() if expires else None,
    }
    _write_sessions(path, sessions)
    return path


def forget_session(db_url: str) -> dict[str, Any] | None:
    """Remove this database's session from the file; the entry removed, if any."""
    path = session_path()
    sessions = _read_sessions(path)
    entry = sessions.pop(digest(db_url), None)
    if entry is not None:
        if sessions:
            _write_sessions(path, sessions)
        else:
            path.unlink(missing_ok=True)
    return entry if isinstance(entry, dict) else None


# -- resolving a principal ------------------------------------------------------------------
def presented_token(db_url: str) -> tuple[str, str] | None:
    """(token, source): ``SHELLFLOW_TOKEN`` first, then the session file, else None."""
    env = os.environ.get(TOKEN_ENV)
    if env:
        return env.strip(), TOKEN_ENV
    session = read_session(db_url)
    if session is not None:
        return session["token"], "login"
    return None


def user_rights(conn: Reader, user_id: str) -> frozenset[str]:
    """A user's effective rights, read in one query."""
    return frozenset(r[0] for r in conn.query(RIGHTS_SQL, [user_id] * 3))


def principal_of_token(db_url: str, token: str, source: str) -> Principal:
    """The user a token names, with its rights (one query, one round trip); refused (exit 5)
    when unknown, revoked or expired, with one line saying which and how to get a new one."""
    from shellflow.model.access import Principal
    from shellflow.model.kept import kept_reader

    where = "SHELLFLOW_TOKEN" if source == TOKEN_ENV else "your session"
    again = "log in again with 'flow login -u USER'"
    with kept_reader(db_url) as conn:  # the route's look-up that follows reuses it
        found = conn.query(_TOKEN_SQL, [digest(token)] * 5)
        if not found:
            raise PermissionDenied(f"the token of {where} is unknown (revoked, or its user was "
                                   f"deleted); {again}")  # fmt: skip
        expires_raw, revoked_raw, user_id, name, _, _ = found[0]
        revoked, expires = aware(revoked_raw), aware(expires_raw)
        if revoked is not None:
            raise PermissionDenied(
                f"the token of {where} was revoked at {revoked:%Y-%m-%d %H:%M:%S} UTC; {again}"
            )
        if expires is not None and expires <= datetime.now(UTC):
            raise PermissionDenied(
                f"the token of {where} expired at {expires:%Y-%m-%d %H:%M:%S} UTC; {again}"
            )
    from shellflow.model.rights import SCOPABLE

    rights = frozenset(row[4] for row in found if row[4] is not None and row[5] is None)
    scoped: dict[str, set[str]] = {}
    for row in found:  # only a processor right means anything on one processor
        if row[4] in SCOPABLE and row[5] is not None:
            scoped.setdefault(row[4], set()).add(row[5])
    return Principal(
        name=name, local_owner=False, rights=rights, user_id=user_id, source=source,
        expires=expires, scoped={right: frozenset(on) for right, on in scoped.items()},
    )  # fmt: skip


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _owner_uid(settings: Settings) -> int | None:
    """The uid owning the embedded database (its file, else the home); None when neither
    exists yet (whoever creates them will own them)."""
    from shellflow.model.urls import sqlite_path

    path = sqlite_path(settings.db)
    for candidate in (path, settings.home):
        if candidate is None:
            continue
        try:
            return candidate.stat().st_uid
        except OSError:
            continue
    return None


def owner_principal(settings: Settings) -> Principal:
    """Who acts without a login.

    On SQLite: the OS user owning the embedded database (its file, else the home), compared
    by uid with the effective uid, never taken from an environment variable (``LOGNAME`` is
    anyone's to set); another local user holds no right until it logs in. On PostgreSQL:
    the role named by the database URL (who can connect as it owns the database).
    """
    from shellflow.model.access import Principal
    from shellflow.model.urls import dialect_of

    if dialect_of(settings.db) == "sqlite":
        uid = os.geteuid()
        name = _user_name(uid)
        owner = _owner_uid(settings)
        if owner is None or owner == uid:
            return Principal(name=name, local_owner=True, source="os user")
        return Principal(
            name=name, local_owner=False, source=f"os user (the home is {_user_name(owner)}'s)"
        )
    from urllib.parse import unquote, urlsplit

    user = urlsplit(settings.db).username
    name = unquote(user) if user else _user_name(os.geteuid())
    return Principal(name=name, local_owner=True, source="database URL")


def resolve(settings: Settings) -> Principal:
    """SHELLFLOW_TOKEN, else the session file, else the owner (see :func:`owner_principal`)."""
    presented = presented_token(settings.db)
    if presented is not None:
        return principal_of_token(settings.db, *presented)
    return owner_principal(settings)
