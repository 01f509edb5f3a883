"""Where processors run: networks, nodes, agents, workers, deployments and schedulers."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shellflow.model.base import Base, NamedMixin

if TYPE_CHECKING:
    from shellflow.model.network import Processor, Queue

STRATEGIES = ("BALANCED", "EFFICIENT")
# A node's placement state (``flow node cordon|uncordon|drain``): ``active`` takes new
# processors, ``cordoned`` takes none and keeps what it runs, ``drained`` takes none and has
# what it ran placed elsewhere.
NODE_STATES = ("active", "cordoned", "drained")


class Network(NamedMixin, Base):
    __tablename__ = "network"
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    queues: Mapped[list[Queue]] = relationship(back_populates="network")
    nodes: Mapped[list[Node]] = relationship(back_populates="network")
    schedulers: Mapped[list[Scheduler]] = relationship(back_populates="network")


class Scheduler(NamedMixin, Base):
    __tablename__ = "scheduler"
    strategy: Mapped[str] = mapped_column(
        Enum(*STRATEGIES, name="strategy", native_enum=False), default="BALANCED"
    )
    interval: Mapped[int | None]
    network_id: Mapped[str | None] = mapped_column(ForeignKey("network.id", ondelete="SET NULL"))
    network: Mapped[Network | None] = relationship(back_populates="schedulers")
    nodes: Mapped[list[Node]] = relationship(back_populates="scheduler")


class Node(NamedMixin, Base):
    __tablename__ = "node"
    hostname: Mapped[str | None] = mapped_column(String(200))
    cpus: Mapped[int] = mapped_column(default=0)
    cpuload: Mapped[float] = mapped_column(default=0.0)
    memsize: Mapped[int | None]
    freemem: Mapped[int | None]
    memused: Mapped[float] = mapped_column(default=0.0)
    disksize: Mapped[int | None]
    diskusage: Mapped[float | None]
    heartbeat: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(20), default="active", server_default="active")
    scheduler_id: Mapped[str | None] = mapped_column(
        ForeignKey("scheduler.id", ondelete="SET NULL")
    )
    scheduler: Mapped[Scheduler | None] = relationship(back_populates="nodes")
    network_id: Mapped[str | None] = mapped_column(ForeignKey("network.id", ondelete="SET NULL"))
    network: Mapped[Network | None] = relationship(back_populates="nodes")
    agent: Mapped[Agent | None] = relationship(back_populates="node", uselist=False)


class Agent(NamedMixin, Base):
    __tablename__ = "agent"
    hostname: Mapped[str | None] = mapped_column(String(200))
    cpus: Mapped[int | None]
    port: Mapped[int | None]
    pid: Mapped[int | None]
    # With the pid, names the agent's process for good (shellflow.engine.pids.ProcessId).
    pid_start: Mapped[str | None] = mapped_column(String(20))
    heartbeat: Mapped[datetime | None]
    node_id: Mapped[str] = mapped_column(ForeignKey("node.id"), unique=True)
    node: Mapped[Node] = relationship(back_populates="agent")
    workers: Mapped[list[Worker]] = relationship(
        back_populates="agent", cascade="all, delete-orphan"
    )


class Deployment(NamedMixin, Base):
    """A processor placed on a node (of a host) with some of its CPUs: only that node's
    agent serves it. ``node_id`` is None until the placement binds it (a deployment added by
    hand names a host only)."""

    __tablename__ = "deployment"
    hostname: Mapped[str] = mapped_column(String(200))
    cpus: Mapped[int] = mapped_column(default=1)
    node_id: Mapped[str | None] = mapped_column(
        ForeignKey("node.id", ondelete="CASCADE"), index=True
    )
    node: Mapped[Node | None] = relationship()
    processor_id: Mapped[str] = mapped_column(
        ForeignKey("processor.id", ondelete="CASCADE"), index=True
    )
    processor: Mapped[Processor] = relationship(back_populates="deployments")
    worker: Mapped[Worker | None] = relationship(back_populates="deployment", uselist=False)
    # What this deployment's worker last reported (a share of a spread processor scales on
    # its own: shellflow.engine.worker.autoscale, shellflow.engine.fleet.spread).
    workers_current: Mapped[int | None]
    workers_desired: Mapped[int | None]
    scale_reason: Mapped[str | None] = mapped_column(Text)


class Worker(NamedMixin, Base):
    __tablename__ = "worker"
    backend: Mapped[str | None] = mapped_column(String(500))
    broker: Mapped[str | None] = mapped_column(String(500))
    concurrency: Mapped[int | None]
    process: Mapped[int | None]
    # With the pid, names the worker's main process for good (engine.pids.ProcessId).
    process_start: Mapped[str | None] = mapped_column(String(20))
    port: Mapped[int | None]
    hostname: Mapped[str | None] = mapped_column(String(200))
    workerdir: Mapped[str | None] = mapped_column(Text)
    heartbeat: Mapped[datetime | None]
    processor_id: Mapped[str] = mapped_column(
        ForeignKey("processor.id", ondelete="CASCADE"), index=True
    )
    processor: Mapped[Processor] = relationship()
    deployment_id: Mapped[str | None] = mapped_column(
        ForeignKey("deployment.id", ondelete="SET NULL")
    )
    deployment: Mapped[Deployment | None] = relationship(back_populates="worker")
    agent_id: Mapped[str] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"), index=True)
    agent: Mapped[Agent] = relationship(back_populates="workers")


class Container(NamedMixin, Base):
    __tablename__ = "container"
    container_id: Mapped[str] = mapped_column(String(100), unique=True)


class Action(NamedMixin, Base):
    """A requested operation on a host, worker, processor, queue or all of them."""

    __tablename__ = "action"
    params: Mapped[str | None] = mapped_column(Text)
    target: Mapped[str] = mapped_column(String(20))


class Setting(NamedMixin, Base):
    __tablename__ = "settings"
    value: Mapped[str] = mapped_column(Text)
