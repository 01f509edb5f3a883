"""What happens: calls, their events, logs, and scheduler jobs.

These are records, not user-named objects, so their names are not unique. Everything that
was pickled in the original (job state) is JSON text here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shellflow.model.base import Base, IdMixin, utcnow

# ``dead``: redelivered too often (its worker died each time), set aside in its dead-letter
# queue (shellflow.engine.worker.delivery); ``flow task retry`` sends it again.
CALL_STATES = (
    "pending", "received", "running", "finished", "failed", "retry", "revoked", "dead",
)  # fmt: skip
UNFINISHED_WHERE = "state IN ('pending', 'received', 'running', 'retry')"


class Call(IdMixin, Base):
    """One execution of a socket; ``tracking`` is the flow run it belongs to."""

    __tablename__ = "call"
    __table_args__ = (
        Index("ix_call_started", "started"),
        Index("ix_call_socket_started", "socket_id", "started"),
        Index("ix_call_state_started", "state", "started"),
        # ``flow ls calls --socket NAME`` filters on the name, newest first.
        Index("ix_call_name_started", "name", "started"),
        # ``flow ls calls --unfinished``: a few rows among millions; the predicate is
        # shellflow.model.history.UNFINISHED_SQL without its table alias.
        Index(
            "ix_call_unfinished",
            "started",
            postgresql_where=text(UNFINISHED_WHERE),
            sqlite_where=text(UNFINISHED_WHERE),
        ),
    )
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(20), default="pending")
    socket_id: Mapped[str | None] = mapped_column(ForeignKey("socket.id", ondelete="SET NULL"))
    task_id: Mapped[str | None] = mapped_column(ForeignKey("task.id", ondelete="SET NULL"))
    parent: Mapped[str | None] = mapped_column(String(36), index=True)
    # JSON list of the calls whose results this call received, when there were several (a
    # join's target, a funnel's final step); ``parent`` is the last of them to arrive.
    sources: Mapped[str | None] = mapped_column(Text)
    # The call this one retries (``flow task retry``): set by the command that sends it, and
    # kept by the worker's upserts (not one of shellflow.model.call_writes.CALL_COLUMNS).
    taskparent: Mapped[str | None] = mapped_column(String(36))
    tracking: Mapped[str | None] = mapped_column(String(36), index=True)
    celeryid: Mapped[str | None] = mapped_column(String(64), unique=True)
    resultid: Mapped[str | None] = mapped_column(String(64))
    argument: Mapped[str | None] = mapped_column(String(200))
    args: Mapped[str | None] = mapped_column(Text)  # JSON
    result: Mapped[str | None] = mapped_column(Text)  # JSON
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    hostname: Mapped[str | None] = mapped_column(String(200))
    worker: Mapped[str | None] = mapped_column(String(200))
    started: Mapped[datetime | None]
    finished: Mapped[datetime | None]
    lastupdated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    events: Mapped[list[Event]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="Event.created"
    )


class Event(IdMixin, Base):
    """A step in a call's life that its row does not tell: retry, redelivered, revoked,
    plug, deadletter. The lifecycle (received, prerun, postrun, failure) is read from the
    call row itself (``shellflow.model.lifecycle``)."""

    __tablename__ = "event"
    name: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(80))
    call_id: Mapped[str | None] = mapped_column(
        ForeignKey("call.id", ondelete="CASCADE"), index=True
    )
    call: Mapped[Call | None] = relationship(back_populates="events")


class Log(IdMixin, Base):
    """A line of output attached to any object (``discriminator`` names its type)."""

    __tablename__ = "log"
    __table_args__ = (Index("ix_log_oid_created", "oid", "created"),)
    oid: Mapped[str] = mapped_column(String(36))
    discriminator: Mapped[str | None] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200))
    public: Mapped[bool] = mapped_column(default=False)
    owner: Mapped[str | None] = mapped_column(String(80))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Work(IdMixin, Base):
    __tablename__ = "work"
    name: Mapped[str | None] = mapped_column(String(200))
    next_run_time: Mapped[float | None] = mapped_column(Float)
    job_state: Mapped[str | None] = mapped_column(Text)  # JSON
    task_id: Mapped[str | None] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"))


class Job(Base):
    """A scheduled job's state, keyed by the scheduler's job id."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float, index=True)
    job_state: Mapped[str] = mapped_column(Text)  # JSON
