"""Users, roles, privileges and logins.

No clear text anywhere: user and processor passwords are kept as argon2 hashes and login
tokens as SHA-256 digests, unlike the original which stored both the hash and the password.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Column, Enum, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shellflow.model.base import Base, IdMixin, NamedMixin, UTCDateTime, utcnow
from shellflow.model.rights import RIGHTS

if TYPE_CHECKING:
    from shellflow.model.network import Processor


def _link(name: str, left: str, right: str) -> Table:
    return Table(
        name,
        Base.metadata,
        Column(
            f"{left}_id", ForeignKey(f"{_TABLES[left]}.id", ondelete="CASCADE"), primary_key=True
        ),
        Column(
            f"{right}_id", ForeignKey(f"{_TABLES[right]}.id", ondelete="CASCADE"), primary_key=True
        ),
        # Who granted (or revoked) it and when, as ``flow ls user -n NAME`` shows them.
        Column("granted_by", String(80), nullable=True),
        Column("granted_at", UTCDateTime(), nullable=True),
    )


_TABLES = {"user": "users", "role": "role", "privilege": "privilege"}
role_privileges = _link("role_privileges", "role", "privilege")
user_privileges = _link("user_privileges", "user", "privilege")
user_privileges_revoked = _link("user_privileges_revoked", "user", "privilege")
user_roles = _link("user_roles", "user", "role")


def _on_processor(name: str, holder: str) -> Table:
    """Grants of a right on one processor alone (rights.SCOPABLE): gone with the processor."""
    return Table(
        name,
        Base.metadata,
        *(
            Column(f"{key}_id", ForeignKey(f"{table}.id", ondelete="CASCADE"), primary_key=True)
            for key, table in (
                (holder, _TABLES[holder]),
                ("privilege", "privilege"),
                ("processor", "processor"),
            )
        ),
        Column("granted_by", String(80), nullable=True),
        Column("granted_at", UTCDateTime(), nullable=True),
    )


user_processor_privileges = _on_processor("user_processor_privileges", "user")
role_processor_privileges = _on_processor("role_processor_privileges", "role")


class Privilege(NamedMixin, Base):
    """One row per right; granting it links the row to a user or a role."""

    __tablename__ = "privilege"
    right: Mapped[str] = mapped_column(Enum(*RIGHTS, name="right", native_enum=False, length=40))


class Role(NamedMixin, Base):
    __tablename__ = "role"
    privileges: Mapped[list[Privilege]] = relationship(secondary=role_privileges)


class User(NamedMixin, Base):
    __tablename__ = "users"
    email: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    privileges: Mapped[list[Privilege]] = relationship(secondary=user_privileges)
    revoked: Mapped[list[Privilege]] = relationship(secondary=user_privileges_revoked)
    roles: Mapped[list[Role]] = relationship(secondary=user_roles)
    logins: Mapped[list[Login]] = relationship(back_populates="user", cascade="all, delete-orphan")


class Login(IdMixin, Base):
    """A session (``flow login``) or a token (``flow token create``) of one user.

    Only the SHA-256 digest of the token is kept; a revoked row stays (``revoked`` set) so
    a client presenting it is told it was revoked rather than that it is unknown.
    """

    __tablename__ = "login"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    user: Mapped[User] = relationship(back_populates="logins")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    login: Mapped[datetime] = mapped_column(default=utcnow)
    expires: Mapped[datetime | None]
    kind: Mapped[str] = mapped_column(String(10), default="session", server_default="session")
    name: Mapped[str | None] = mapped_column(String(200))
    revoked: Mapped[datetime | None]


class LoginFailure(Base):
    """Consecutive failed logins per user name (known or not), to slow guessing down."""

    __tablename__ = "login_failure"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure: Mapped[datetime] = mapped_column(default=utcnow)


class Password(IdMixin, Base):
    """A secret guarding a processor, kept only as a hash."""

    __tablename__ = "passwords"
    hash: Mapped[str] = mapped_column(String(200))
    processor: Mapped[Processor | None] = relationship(back_populates="password", uselist=False)
