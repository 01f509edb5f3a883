"""Checking passwords, opening sessions and tokens, listing and revoking them (ORM side).

Failed logins are counted per user name in ``login_failure`` (in the database, so every
client of a shared database sees the same count, whatever machine the guesses come from).
Each consecutive failure doubles the wait before the next attempt of that name is checked
(:func:`delay`); a success clears the count. Unknown names are counted as well, and their
password is checked against a dummy hash, so neither the answer nor its time tells whether
a user exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import shellflow.model.tables  # noqa: F401  (every mapper must be known before the first query)
from shellflow.errors import NotFound, UsageError
from shellflow.model.credentials import digest, new_token
from shellflow.model.passwords import hash_password, verify_password
from shellflow.model.security import Login, LoginFailure, User

FIRST_DELAY = 0.25  # seconds to wait after the first failure; doubled by each further one
MAX_DELAY = 30.0
_DUMMY_HASH: list[str] = []


def delay(failures: int) -> float:
    """Seconds an attempt waits after ``failures`` consecutive failures of its user name."""
    if failures <= 0:
        return 0.0
    return min(FIRST_DELAY * 2 ** min(failures - 1, 20), MAX_DELAY)


def failures_of(session: Session, name: str) -> tuple[int, datetime | None]:
    row = session.get(LoginFailure, name)
    return (row.failures, row.last_failure) if row else (0, None)


def wait_needed(session: Session, name: str) -> float:
    """How long an attempt for ``name`` must still wait (0 when it may be checked now)."""
    failures, last = failures_of(session, name)
    if last is None:
        return 0.0
    until = last + timedelta(seconds=delay(failures))
    return max(0.0, (until - datetime.now(UTC)).total_seconds())


def check_password(session: Session, name: str, password: str) -> User | None:
    """The user when ``password`` is theirs; None otherwise, after counting the failure."""
    user = session.scalars(select(User).where(User.name == name)).one_or_none()
    if user is not None and user.enabled and verify_password(user.password_hash, password):
        row = session.get(LoginFailure, name)
        if row is not None:
            session.delete(row)
        return user
    if user is None:  # spend the time a real check takes
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hash_password("not a password"))
        verify_password(_DUMMY_HASH[0], password)
    row = session.get(LoginFailure, name)
    if row is None:
        row = LoginFailure(name=name, failures=0)
        session.add(row)
    row.failures += 1
    row.last_failure = datetime.now(UTC)
    return None


def open_login(
    session: Session, user: User, kind: str, expires: datetime | None, name: str | None = None
) -> str:
    """A new session or token for ``user``: the token, shown once and stored as a digest."""
    if name is not None:
        clash = session.scalars(
            select(Login).where(Login.user_id == user.id, Login.name == name)
        ).first()
        if clash is not None:
            from shellflow.errors import Conflict

            raise Conflict(f"user {user.name!r} already has a token named {name!r}")
    token = new_token()
    session.add(Login(user=user, token_hash=digest(token), kind=kind, expires=expires, name=name))
    return token


@dataclass(frozen=True)
class LoginRow:
    id: str
    user: str
    kind: str
    name: str | None
    created: datetime
    expires: datetime | None
    revoked: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and self.expires <= now:
            return "expired"
        return "active"

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id, "user": self.user, "kind": self.kind, "name": self.name,
            "created": self.created.isoformat(),
            "expires": self.expires.isoformat() if self.expires else None,
            "revoked": self.revoked.isoformat() if self.revoked else None,
            "state": self.state(now),
        }  # fmt: skip


def list_logins(session: Session, user: str | None) -> list[LoginRow]:
    """Sessions and tokens (of one user, or of everyone), oldest first; never a secret."""
    query = select(Login, User.name).join(User, User.id == Login.user_id)
    if user is not None:
        query = query.where(User.name == user)
    rows = session.execute(query.order_by(Login.login)).all()
    return [LoginRow(x.id, name, x.kind, x.name, x.login, x.expires, x.revoked) for x, name in rows]


def revoke(session: Session, ident: str, user: str | None) -> LoginRow:
    """Revoke a session or token by id (or an id's unique prefix) or by name.

    ``user``: only that user's (a user revokes their own; None: anyone's, for the owner).
    """
    rows = [r for r in list_logins(session, user) if r.revoked is None]
    found = [r for r in rows if r.id == ident or r.name == ident]
    if not found and len(ident) >= 6:
        found = [r for r in rows if r.id.startswith(ident)]
    if not found:
        raise NotFound("token", ident, [r.name or r.id for r in rows])
    if len(found) > 1:
        raise UsageError(f"{ident!r} names {len(found)} tokens; give the id")
    login = session.get(Login, found[0].id)
    assert login is not None
    login.revoked = datetime.now(UTC)
    return found[0]


def revoke_digest(session: Session, token: str) -> bool:
    """Revoke the session holding ``token`` (``flow logout``); whether one was found."""
    login = session.scalars(select(Login).where(Login.token_hash == digest(token))).first()
    if login is None or login.revoked is not None:
        return False
    login.revoked = datetime.now(UTC)
    return True


def user_named(session: Session, name: str) -> User:
    user = session.scalars(select(User).where(User.name == name)).one_or_none()
    if user is None:
        raise NotFound("user", name, session.scalars(select(User.name)).all())
    return user
