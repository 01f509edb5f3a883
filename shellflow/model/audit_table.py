"""The ``audit`` table as the ORM (and so ``flow db init`` and the migrations) knows it.

Kept apart from :mod:`shellflow.model.audit`, which appends and reads the rows without
SQLAlchemy (a refusal and ``flow ls audit`` take the light path of
:mod:`shellflow.model.listing`). The columns are named ``at`` and ``origin`` because
``when`` and ``where`` are SQL keywords; ``flow ls audit --json`` shows them as ``when``
and ``where``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shellflow.model.base import Base, utcnow


class AuditRow(Base):
    """One thing that happened, appended and never changed (database triggers refuse an
    UPDATE or a DELETE of a row, see migration 0008).

    ``before`` and ``after``: the object as JSON text before and after the change (None
    for an addition, a deletion), with every secret left out (``shellflow.model.audit``).
    The id is an increasing integer so rows sort in the order they were appended.
    """

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    who: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(40))
    name: Mapped[str | None] = mapped_column(String(400))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str | None] = mapped_column(String(200))
