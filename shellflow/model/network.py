"""What users build: queues, processors, tasks, sockets, arguments, plugs and gates.

The spec joined sockets to queues and plugs to sockets through many-to-many tables while
using them as one-to-one; here those links are plain foreign keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shellflow.model.base import Base, IdMixin, NamedMixin

if TYPE_CHECKING:
    from shellflow.model.files import Flow
    from shellflow.model.infra import Deployment, Network
    from shellflow.model.security import Password, User

QUEUE_TYPES = ("direct", "topic", "fanout")
PLUG_TYPES = ("RESULT", "ERROR")
SCHEDULE_TYPES = ("CRON", "INTERVAL")
PROCESSOR_STATUSES = ("ready", "deploying", "running", "paused", "stopped", "error", "removed")


class Queue(NamedMixin, Base):
    __tablename__ = "queue"
    qtype: Mapped[str] = mapped_column(
        Enum(*QUEUE_TYPES, name="queue_type", native_enum=False), default="direct"
    )
    durable: Mapped[bool] = mapped_column(default=True)
    reliable: Mapped[bool] = mapped_column(default=True)
    auto_delete: Mapped[bool] = mapped_column(default=False)
    max_length: Mapped[int] = mapped_column(default=-1)
    max_length_bytes: Mapped[int] = mapped_column(default=-1)
    message_ttl: Mapped[int | None]
    expires: Mapped[int | None]
    network_id: Mapped[str | None] = mapped_column(ForeignKey("network.id", ondelete="SET NULL"))
    network: Mapped[Network | None] = relationship(back_populates="queues")


class Processor(NamedMixin, Base):
    """A git repository and module, deployed with ``concurrency`` CPUs on a host."""

    __tablename__ = "processor"
    module: Mapped[str] = mapped_column(String(200))
    gitrepo: Mapped[str] = mapped_column(String(500))
    branch: Mapped[str | None] = mapped_column(String(100))
    commit: Mapped[str | None] = mapped_column(String(64))
    gittag: Mapped[str | None] = mapped_column(String(100))
    # The commit its agents deploy: ``commit`` resolved, or the branch, tag or default branch
    # resolved once by the first agent; cleared (resolved again) by ``flow proc update --pull``
    # and by any change of gitrepo, branch, commit or gittag.
    deployed_commit: Mapped[str | None] = mapped_column(String(64))
    modulepath: Mapped[str | None] = mapped_column(Text)
    requirements: Mapped[str | None] = mapped_column(Text)
    hostname: Mapped[str | None] = mapped_column(String(200))
    concurrency: Mapped[int] = mapped_column(default=1)
    workers: Mapped[int | None]
    # Autoscaling (shellflow.engine.worker.autoscale): the pool's bounds, both set or neither,
    # 1 <= min_workers <= max_workers <= concurrency; and what its worker last reported.
    min_workers: Mapped[int | None]
    max_workers: Mapped[int | None]
    workers_current: Mapped[int | None]
    workers_desired: Mapped[int | None]
    scale_reason: Mapped[str | None] = mapped_column(Text)
    retries: Mapped[int | None]
    retrydelay: Mapped[int | None]
    timelimit: Mapped[int | None]
    ratelimit: Mapped[str | None] = mapped_column(String(20))
    beat: Mapped[bool] = mapped_column(default=False)
    deploy: Mapped[bool] = mapped_column(default=True)
    perworker: Mapped[bool] = mapped_column(default=True)
    ignoreresult: Mapped[bool] = mapped_column(default=False)
    ackslate: Mapped[bool] = mapped_column(default=True)
    trackstarted: Mapped[bool] = mapped_column(default=True)
    detached: Mapped[bool] = mapped_column(default=False)
    hasapi: Mapped[bool] = mapped_column(default=False)
    endpoint: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    icon: Mapped[str | None] = mapped_column(Text)
    uistate: Mapped[str | None] = mapped_column(Text)
    use_container: Mapped[bool] = mapped_column(default=False)
    container_image: Mapped[str | None] = mapped_column(String(200))
    container_command: Mapped[str | None] = mapped_column(String(500))
    container_version: Mapped[str | None] = mapped_column(String(50))
    status_reason: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    user: Mapped[User | None] = relationship()
    flow_id: Mapped[str | None] = mapped_column(ForeignKey("flow.id", ondelete="SET NULL"))
    flow: Mapped[Flow | None] = relationship(back_populates="processors")
    password_id: Mapped[str | None] = mapped_column(ForeignKey("passwords.id", ondelete="SET NULL"))
    password: Mapped[Password | None] = relationship(back_populates="processor")
    sockets: Mapped[list[Socket]] = relationship(back_populates="processor")
    plugs: Mapped[list[Plug]] = relationship(back_populates="processor")
    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="processor", cascade="all, delete-orphan"
    )


class Task(NamedMixin, Base):
    """A function of a processor's module; named ``module.function``."""

    __tablename__ = "task"
    module: Mapped[str] = mapped_column(String(200))
    function: Mapped[str] = mapped_column(String(200))
    gitrepo: Mapped[str | None] = mapped_column(String(500))
    mixin: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str | None] = mapped_column(Text)
    code: Mapped[str | None] = mapped_column(Text)
    sockets: Mapped[list[Socket]] = relationship(back_populates="task")
    arguments: Mapped[list[Argument]] = relationship(
        back_populates="task", cascade="all, delete-orphan", order_by="Argument.position"
    )


class Argument(IdMixin, Base):
    """A named parameter of a task that plugs can feed; unique per task, not globally."""

    __tablename__ = "argument"
    __table_args__ = (UniqueConstraint("task_id", "name"),)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[int | None] = mapped_column(Integer)
    owner: Mapped[str | None] = mapped_column(String(80))
    task_id: Mapped[str] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"))
    task: Mapped[Task] = relationship(back_populates="arguments")
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    plugs: Mapped[list[Plug]] = relationship(back_populates="argument")


class Socket(NamedMixin, Base):
    """One function of a processor behind a durable queue, optionally on a schedule."""

    __tablename__ = "socket"
    processor_id: Mapped[str] = mapped_column(ForeignKey("processor.id"), index=True)
    processor: Mapped[Processor] = relationship(back_populates="sockets")
    queue_id: Mapped[str] = mapped_column(ForeignKey("queue.id"), index=True)
    queue: Mapped[Queue] = relationship()
    task_id: Mapped[str] = mapped_column(ForeignKey("task.id"), index=True)
    task: Mapped[Task] = relationship(back_populates="sockets")
    schedule_type: Mapped[str | None] = mapped_column(
        Enum(*SCHEDULE_TYPES, name="schedule_type", native_enum=False)
    )
    interval: Mapped[int | None]
    cron: Mapped[str | None] = mapped_column(String(100))
    scheduled: Mapped[bool] = mapped_column(default=False)
    wait: Mapped[bool] = mapped_column(default=False)
    description: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sourceplugs: Mapped[list[Plug]] = relationship(
        back_populates="source", foreign_keys="Plug.source_id"
    )
    targetplugs: Mapped[list[Plug]] = relationship(
        back_populates="target", foreign_keys="Plug.target_id"
    )


class Plug(NamedMixin, Base):
    """An edge: the source socket's result (or error) becomes the target's input."""

    __tablename__ = "plug"
    type: Mapped[str] = mapped_column(
        Enum(*PLUG_TYPES, name="plug_type", native_enum=False), default="RESULT"
    )
    processor_id: Mapped[str] = mapped_column(ForeignKey("processor.id"), index=True)
    processor: Mapped[Processor] = relationship(back_populates="plugs")
    source_id: Mapped[str] = mapped_column(ForeignKey("socket.id"), index=True)
    source: Mapped[Socket] = relationship(back_populates="sourceplugs", foreign_keys=[source_id])
    target_id: Mapped[str] = mapped_column(ForeignKey("socket.id"), index=True)
    target: Mapped[Socket] = relationship(back_populates="targetplugs", foreign_keys=[target_id])
    queue_id: Mapped[str] = mapped_column(ForeignKey("queue.id"), index=True)
    queue: Mapped[Queue] = relationship()
    argument_id: Mapped[str | None] = mapped_column(ForeignKey("argument.id"))
    argument: Mapped[Argument | None] = relationship(back_populates="plugs")
    description: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Gate(NamedMixin, Base):
    __tablename__ = "gate"
    open: Mapped[bool] = mapped_column(default=True)
    task_id: Mapped[str | None] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"))
