"""The node's lease: an agent cut off from the services stops its workers before the
placement gives their processors to another node.

The placement (:mod:`shellflow.engine.fleet.placement`) moves a node's processors
:data:`~shellflow.engine.fleet.placement.STALE_AFTER` (15 s) after the node's last heartbeat.
A node whose link to the services is cut (its agent runs but cannot reach the database) or
that is frozen (a stopped VM, ``SIGSTOP``) does not know it: when the link comes back its
workers would compete with the new node's. So a thread of the agent reads, every
:data:`CHECK_EVERY` second, its node's heartbeat as the database holds it and how many other
nodes are live and active (fresh heartbeat, not stopped, neither cordoned nor drained: the
nodes the placement could move work to). A read is *good* when the
database answers and the node's heartbeat there is younger than :data:`LOST_AFTER`. Once
:data:`LOST_AFTER` (10 s) have passed since the heartbeat the last good read saw was
written (the placement moves work 15 s after it: 5 s later), and other live nodes existed
at the last good read, the agent asks each of its workers for a
warm shutdown (running calls finish, queued ones stay queued for the node the work goes
to). A node alone keeps serving through a database outage: nowhere else could the work go,
and its workers spool their records meanwhile (docs/reliability.md).

The time runs on the monotonic clock, which also runs while the agent is frozen: an agent
woken after more than :data:`LOST_AFTER` stops its workers at once, before any read.
Two threads, so that a read hanging on a cut link (TCP gives up after minutes) never holds
the check back: the reader, and the watcher that acts on the reader's last good read.

The rows themselves are the other half: the placement moves a deployment by deleting its
row and making a new one (a new id: the deployment's epoch), and the agent restarts or
stops a worker whose deployment row changed or is gone at its next poll (``Placed.serving``
holds the deployment id), so a node woken with its link back stops its stale workers
within a poll even when it was gone for less than :data:`LOST_AFTER`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, func, select

from shellflow.engine.fleet.rows import NODE, STALE
from shellflow.model.base import utcnow

CHECK_EVERY = 1.0  # seconds between two reads of the lease
LOST_AFTER = 10.0  # seconds without a good read: the workers stop (placement moves at 15)
log = logging.getLogger("shellflow.agent")


def read(engine: Engine, node_id: str, lost_after: float = LOST_AFTER) -> tuple[int, float] | None:
    """How many other nodes are live and the age in seconds of this node's heartbeat as the
    database holds it; None when that is older than ``lost_after`` (not confirmed)."""
    now = utcnow()
    with engine.connect() as conn:
        mine = conn.execute(select(NODE.c.heartbeat).where(NODE.c.id == node_id)).scalar()
        others = conn.execute(
            select(func.count())
            .select_from(NODE)
            .where(NODE.c.id != node_id, NODE.c.heartbeat >= now - STALE)
            .where(NODE.c.status != "stopped", NODE.c.state == "active")
        ).scalar_one()
    if mine is None:
        return None
    if mine.tzinfo is None:
        mine = mine.replace(tzinfo=now.tzinfo)
    age = max(0.0, (now - mine).total_seconds())
    if age > lost_after:
        return None
    return int(others), age


class Lease:
    """Calls ``on_lost`` once whenever the lease lapses (see the module's docstring)."""

    def __init__(
        self,
        engine: Engine,
        node_id: str,
        on_lost: Callable[[str], None],
        *,
        every: float = CHECK_EVERY,
        lost_after: float = LOST_AFTER,
    ) -> None:
        self.engine, self.node_id, self.on_lost = engine, node_id, on_lost
        self.every, self.lost_after = every, lost_after
        self.last_good = time.monotonic()
        self.others = 0  # other live nodes at the last good read
        self.lapsed = False
        self._failure = ""

    def start(self, stopping: threading.Event) -> None:
        for target, name in ((self._reader, "lease-reader"), (self._watcher, "lease-watcher")):
            threading.Thread(target=target, args=(stopping,), name=name, daemon=True).start()

    def read_once(self) -> bool:
        """One read; True when it confirmed the lease."""
        try:
            confirmed = read(self.engine, self.node_id, self.lost_after)
        except Exception as exc:  # the link is cut: the watcher decides
            if str(exc) != self._failure:
                log.debug("cannot read the node's lease: %s", exc)
            self._failure = str(exc)
            return False
        self._failure = ""
        if confirmed is None:
            return False
        others, age = confirmed
        if others != self.others:
            log.info("lease: %d other live nodes", others)
        # Counted from the heartbeat the database holds, as the placement counts: the lease
        # lapses 5 s before the placement may move this node's work, whatever the phase.
        self.last_good, self.others = time.monotonic() - age, others
        if self.lapsed:
            log.info("lease confirmed again (%d other live nodes)", others)
            self.lapsed = False
        return True

    def check(self) -> bool:
        """Act on the time since the last good read; True when the lease has just lapsed."""
        silent = time.monotonic() - self.last_good
        if self.lapsed or silent <= self.lost_after or not self.others:
            return False
        self.lapsed = True
        reason = (
            f"lease lost: the node's heartbeat was last confirmed {silent:.1f} s ago and "
            f"{self.others} other live nodes may have its work"
        )
        log.warning("%s: stopping the workers (warm shutdown)", reason)
        self.on_lost(reason)
        return True

    def _reader(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            self.read_once()
            stopping.wait(self.every)

    def _watcher(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            self.check()
            stopping.wait(self.every / 4)
