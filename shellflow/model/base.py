"""Declarative base and the columns every object shares.

Ids are UUID strings made in Python (not by a database function) so SQLite and PostgreSQL
behave the same, and timestamps are timezone-aware UTC on both.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, MetaData, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Store UTC, always hand back an aware UTC datetime (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime}

    def to_dict(self) -> dict[str, Any]:
        """Column values by column name, for JSON output."""
        return {c.key: getattr(self, c.key) for c in self.__mapper__.column_attrs}


class IdMixin:
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class NamedMixin(IdMixin):
    """A user-managed object: one unique name per object type, an owner and a status."""

    name: Mapped[str] = mapped_column(String(200), unique=True)
    owner: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="ready")
    requested_status: Mapped[str] = mapped_column(String(20), default="ready")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    lastupdated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
