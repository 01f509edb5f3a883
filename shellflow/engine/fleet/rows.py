"""The agent's rows: its node and itself, the processors placed on it, their workers.

Everything an agent reads and writes in the model database, in short transactions of
SQLAlchemy Core (the agent polls twice a second, so no ORM session lingers). Sizes are in
MiB: the model's integer columns are 32-bit on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert, select, update

import shellflow.model.tables  # noqa: F401  (registers every table on Base.metadata)
from shellflow.engine.fleet.deploy import Source
from shellflow.engine.pids import ProcessId
from shellflow.errors import Conflict
from shellflow.model.base import Base, new_id, utcnow
from shellflow.redact import mask_text

PROCESSOR = Base.metadata.tables["processor"]
DEPLOYMENT = Base.metadata.tables["deployment"]
SOCKET = Base.metadata.tables["socket"]
QUEUE = Base.metadata.tables["queue"]
TASK = Base.metadata.tables["task"]
NODE = Base.metadata.tables["node"]
AGENT = Base.metadata.tables["agent"]
WORKER = Base.metadata.tables["worker"]
LOG = Base.metadata.tables["log"]
MIB = 1024 * 1024
STALE = timedelta(seconds=15)  # an agent silent this long is taken for dead


@dataclass
class Placed:
    """A processor this agent serves, as the database wants it (``status`` and ``reason``
    as last read, kept current by the agent's own writes)."""

    id: str
    name: str
    module: str
    source: Source
    concurrency: int
    status: str
    requested: str
    reason: str | None
    deploy: bool
    deployment_id: str | None
    sockets: tuple[tuple[str, ...], ...]

    @property
    def serving(self) -> tuple[Any, ...]:
        """What a running worker depends on besides the code: a change means a restart
        (the deployment id too: a placement made again is a new lease, see lease.py)."""
        return (self.module, self.concurrency, self.sockets, self.deployment_id)


def machine_facts(home: Path, cpus: int | None = None) -> dict[str, Any]:
    """The node's size and load, from the operating system (no extra dependency)."""
    count = cpus or os.cpu_count() or 1
    facts: dict[str, Any] = {"cpus": count}
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        total = page * os.sysconf("SC_PHYS_PAGES")
        free = page * os.sysconf("SC_AVPHYS_PAGES")
        used = round(100.0 * (total - free) / total, 1) if total else 0.0
        facts |= {"memsize": total // MIB, "freemem": free // MIB, "memused": used}
    except (ValueError, OSError, AttributeError):
        pass
    with contextlib.suppress(OSError):
        facts["cpuload"] = round(os.getloadavg()[0] / count, 3)
    try:
        disk = shutil.disk_usage(home if home.exists() else home.parent)
        facts |= {
            "disksize": disk.total // MIB,
            "diskusage": round(100.0 * disk.used / disk.total, 1),
        }
    except OSError:
        pass
    return facts


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _upsert_by_name(
    conn: Connection, table: Table, name: str, values: dict[str, Any], now: datetime
) -> str:
    """The id of ``table``'s row named ``name``, made with ``values`` or updated to them."""
    row = conn.execute(select(table.c.id).where(table.c.name == name)).first()
    if row is None:
        row_id = new_id()
        conn.execute(insert(table).values(id=row_id, name=name, created=now, **values))
        return row_id
    conn.execute(update(table).where(table.c.id == row.id).values(**values))
    return str(row.id)


def register(
    engine: Engine, node: str, hostname: str, facts: dict[str, Any], process: ProcessId
) -> tuple[str, str, str]:
    """Create or refresh this node's row and its agent's; returns (node id, agent id, agent name).

    Refuses (Conflict) while another live agent holds the node: one agent per node.
    """
    now = utcnow()
    with engine.begin() as conn:
        values = {"hostname": hostname, "heartbeat": now, "status": "running", **facts}
        node_id = _upsert_by_name(conn, NODE, node, values, now)
        agent = conn.execute(
            select(AGENT.c.id, AGENT.c.name, AGENT.c.hostname, AGENT.c.pid, AGENT.c.pid_start,
                   AGENT.c.status, AGENT.c.heartbeat)
            .where(AGENT.c.node_id == node_id)
        ).first()  # fmt: skip
        mine = {"hostname": hostname, "cpus": facts["cpus"], "pid": process.pid,
                "pid_start": process.start or None, "heartbeat": now, "status": "running",
                "requested_status": "running"}  # fmt: skip
        if agent is None:
            taken = conn.execute(select(AGENT.c.id).where(AGENT.c.name == node)).first()
            if taken is not None:
                raise Conflict(f"an agent named {node!r} already exists for another node")
            agent_id, agent_name = new_id(), node
            conn.execute(
                insert(AGENT).values(id=agent_id, name=node, node_id=node_id, created=now, **mine)
            )
        else:
            here = agent.hostname in (None, hostname)
            other = ProcessId.parse(agent.pid, agent.pid_start)
            # pids get reused: another agent holds the node only while its very process runs
            live = other is not None and not other.is_same(process) and other.alive()
            if agent.status == "running" and here and live:
                raise Conflict(
                    f"agent {agent.name!r} already runs for node {node!r} (pid {agent.pid})"
                )
            fresh = agent.heartbeat is not None and now - _aware(agent.heartbeat) < STALE
            if agent.status == "running" and not here and fresh:
                raise Conflict(
                    f"agent {agent.name!r} of node {node!r} runs on {agent.hostname}; "
                    "stop it there first or choose another --node"
                )
            agent_id, agent_name = agent.id, agent.name
            conn.execute(update(AGENT).where(AGENT.c.id == agent_id).values(**mine))
    return node_id, agent_id, agent_name


def heartbeat(
    engine: Engine, node_id: str, agent_id: str, facts: dict[str, Any], workers: list[str]
) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(update(NODE).where(NODE.c.id == node_id).values(heartbeat=now, **facts))
        conn.execute(update(AGENT).where(AGENT.c.id == agent_id).values(heartbeat=now))
        if workers:
            conn.execute(update(WORKER).where(WORKER.c.id.in_(workers)).values(heartbeat=now))


def unregister(engine: Engine, node_id: str, agent_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(AGENT)
            .where(AGENT.c.id == agent_id)
            .values(status="stopped", pid=None, pid_start=None)
        )
        conn.execute(update(NODE).where(NODE.c.id == node_id).values(status="stopped"))


def placed(engine: Engine, node_id: str) -> dict[str, Placed]:
    """Processors placed on this node: those with a deployment naming it (the placement
    makes them, hostname or not; see :mod:`shellflow.engine.fleet.placement`)."""
    p, d = PROCESSOR, DEPLOYMENT
    query = (
        select(
            p.c.id, p.c.name, p.c.module, p.c.gitrepo, p.c.branch, p.c.commit, p.c.gittag,
            p.c.modulepath, p.c.requirements, p.c.deployed_commit, p.c.concurrency, p.c.status,
            p.c.requested_status, p.c.status_reason, p.c.deploy,
            d.c.id.label("deployment_id"), d.c.cpus.label("deployment_cpus"),
        )
        .select_from(p.join(d, d.c.processor_id == p.c.id))
        .where(d.c.node_id == node_id)
        .order_by(p.c.name, d.c.id)
    )  # fmt: skip
    sockets = (
        select(SOCKET.c.processor_id, SOCKET.c.name, QUEUE.c.name, QUEUE.c.qtype,
               QUEUE.c.durable, TASK.c.module, TASK.c.function)
        .join(QUEUE, QUEUE.c.id == SOCKET.c.queue_id)
        .join(TASK, TASK.c.id == SOCKET.c.task_id)
        .order_by(SOCKET.c.name)
    )  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        by_processor: dict[str, list[tuple[str, ...]]] = {}
        if rows:
            ids = sorted({r.id for r in rows})
            for s in conn.execute(sockets.where(SOCKET.c.processor_id.in_(ids))):
                by_processor.setdefault(s[0], []).append(tuple(str(v) for v in s[1:]))
    found: dict[str, Placed] = {}
    for r in rows:
        if r.name in found:
            continue
        source = Source(
            gitrepo=r.gitrepo, branch=r.branch or None, commit=r.commit or None,
            gittag=r.gittag or None, modulepath=r.modulepath or None,
            requirements=r.requirements or None, resolved=r.deployed_commit or None,
        )  # fmt: skip
        cpus = r.deployment_cpus if r.deployment_id else r.concurrency
        found[r.name] = Placed(
            id=r.id, name=r.name, module=r.module, source=source,
            concurrency=max(int(cpus or 1), 1), status=r.status,
            requested=r.requested_status or "ready", reason=r.status_reason,
            deploy=r.deploy is not False, deployment_id=r.deployment_id,
            sockets=tuple(by_processor.get(r.id, [])),
        )  # fmt: skip
    return found


def set_status(engine: Engine, processor_id: str, status: str, reason: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(PROCESSOR)
            .where(PROCESSOR.c.id == processor_id)
            .values(status=status, status_reason=None if reason is None else mask_text(reason))
        )


def note(engine: Engine, processor_id: str, text: str) -> None:
    """A line in the processor's log (what the agent did, and why it warned)."""
    with engine.begin() as conn:
        conn.execute(
            insert(LOG).values(
                id=new_id(), created=utcnow(), oid=processor_id, discriminator="processor",
                text=mask_text(text), source="agent",
            )
        )  # fmt: skip


def worker_started(
    engine: Engine, *, name: str, processor_id: str, agent_id: str, deployment_id: str | None,
    process: ProcessId, hostname: str, concurrency: int, workdir: str, broker: str,
    backend: str,
) -> str:  # fmt: skip
    """Record a worker process (one row per processor and node, updated on each start)."""
    now = utcnow()
    values = {
        "processor_id": processor_id, "agent_id": agent_id, "deployment_id": deployment_id,
        "process": process.pid, "process_start": process.start or None, "hostname": hostname,
        "concurrency": concurrency, "workerdir": workdir, "broker": broker, "backend": backend,
        "heartbeat": now, "status": "running", "requested_status": "running",
    }  # fmt: skip
    with engine.begin() as conn:
        return _upsert_by_name(conn, WORKER, name, values, now)


def worker_ended(engine: Engine, worker_id: str, status: str = "stopped") -> None:
    with engine.begin() as conn:
        conn.execute(
            update(WORKER)
            .where(WORKER.c.id == worker_id)
            .values(status=status, process=None, process_start=None)
        )


def worker_removed(engine: Engine, worker_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(WORKER.delete().where(WORKER.c.id == worker_id))


def leftover_workers(engine: Engine, agent_id: str, hostname: str) -> list[tuple[str, ProcessId]]:
    """Worker processes a previous run of this agent left behind (it was killed)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(WORKER.c.id, WORKER.c.process, WORKER.c.process_start).where(
                WORKER.c.agent_id == agent_id,
                WORKER.c.hostname == hostname,
                WORKER.c.process.is_not(None),
            )
        ).all()
    found = [(r.id, ProcessId.parse(r.process, r.process_start)) for r in rows]
    return [(worker_id, process) for worker_id, process in found if process is not None]
