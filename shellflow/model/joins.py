"""Joins in progress: the arguments that have reached a join target in one flow run.

A target socket fed by several argument plugs (or marked ``wait``) runs once every one of
its arguments has arrived for the same flow run. Until then the values that did arrive are
kept here, one row per (flow run, target), read and written under that row's lock by
whichever worker receives the next argument; the row goes away when the join fires.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shellflow.model.base import Base, IdMixin, utcnow


class JoinState(IdMixin, Base):
    """``arrivals`` is JSON: ``{slot: [{"key", "call", "value"}, ...]}``, oldest first.

    A slot is the target's argument name, or ``*`` for its first positional argument;
    ``key`` (source call and plug) makes a redelivered source call arrive only once.
    """

    __tablename__ = "join_state"
    __table_args__ = (UniqueConstraint("flow", "target_id"),)
    flow: Mapped[str] = mapped_column(String(200))
    target_id: Mapped[str] = mapped_column(ForeignKey("socket.id", ondelete="CASCADE"), index=True)
    arrivals: Mapped[str] = mapped_column(Text, default="{}")
    lastupdated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
