"""The ``metrics`` table (``shellflow.model.metrics`` reads it without SQLAlchemy)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shellflow.model.base import Base


class Metric(Base):
    """One socket's calls in one minute (see ``shellflow.model.metrics``)."""

    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_socket_minute", "socket", "minute", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    socket: Mapped[str] = mapped_column(String(200))
    socket_id: Mapped[str | None] = mapped_column(
        ForeignKey("socket.id", ondelete="SET NULL"), index=True
    )
    minute: Mapped[datetime] = mapped_column(index=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    p50: Mapped[float | None] = mapped_column(Float)
    p90: Mapped[float | None] = mapped_column(Float)
    p99: Mapped[float | None] = mapped_column(Float)
    max: Mapped[float | None] = mapped_column(Float)
    queue_depth: Mapped[int | None] = mapped_column(Integer)
