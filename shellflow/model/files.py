"""Saved flows: files (a flow's saved state), flows and their versions."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shellflow.model.base import Base, IdMixin, NamedMixin, utcnow

if TYPE_CHECKING:
    from shellflow.model.network import Processor

flows_versions = Table(
    "flows_versions",
    Base.metadata,
    Column("flow_id", ForeignKey("flow.id", ondelete="CASCADE"), primary_key=True),
    Column("version_id", ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
)


class File(NamedMixin, Base):
    __tablename__ = "file"
    path: Mapped[str | None] = mapped_column(String(500))
    filename: Mapped[str | None] = mapped_column(String(200))
    collection: Mapped[str | None] = mapped_column(String(200))
    code: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(String(40))
    icon: Mapped[str | None] = mapped_column(String(100))
    versions: Mapped[list[Version]] = relationship(
        back_populates="file", cascade="all, delete-orphan"
    )


class Flow(NamedMixin, Base):
    __tablename__ = "flow"
    file_id: Mapped[str | None] = mapped_column(ForeignKey("file.id", ondelete="SET NULL"))
    file: Mapped[File | None] = relationship()
    processors: Mapped[list[Processor]] = relationship(back_populates="flow")
    versions: Mapped[list[Version]] = relationship(secondary=flows_versions)


class Version(IdMixin, Base):
    __tablename__ = "versions"
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(80))
    file_id: Mapped[str] = mapped_column(ForeignKey("file.id", ondelete="CASCADE"))
    file: Mapped[File] = relationship(back_populates="versions")
    flow: Mapped[str] = mapped_column(Text)
    version: Mapped[datetime] = mapped_column(default=utcnow)
