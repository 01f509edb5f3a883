"""The agent commits the call records that workers it no longer runs left spooled.

A worker commits its spool before it exits, and a worker starting on the node commits what
a dead worker *of the same processor* left (``shellflow.engine.records.spool_writer``).
That leaves records nobody commits when a worker dies with records spooled and no
successor comes: a node cut off from the database lapses its lease, asks its workers for a
warm shutdown, which waits on the unreachable database for the records, and kills them
once the link is back and the stop timeout is past; by then the processor runs on another
node. Their calls stayed ``pending`` for good although their results had been delivered
(found by ``tests/engine/test_netns_fleet.py`` on a three-minute cut). So the agent, every
:data:`SWEEP_EVERY` seconds and in a thread of its own (a sweep waiting on the database
never holds back its poll or its lease), claims and commits the folders of dead workers of
every processor under its home (and its run-as workspace), for its database. A live
worker's folder is never claimed, and two claimers never take one folder
(``shellflow.engine.records.spool.leftovers``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from shellflow.engine.pids import ProcessId
from shellflow.engine.records.spool import spool_roots
from shellflow.engine.records.spool_writer import Committer
from shellflow.engine.records.store import RecordStore

SWEEP_EVERY = 30.0  # seconds between two sweeps (the first one at once)
log = logging.getLogger(__name__)


def sweep(homes: Sequence[Path], db_url: str) -> int:
    """Commit the spool folders dead workers left under ``homes``; how many were committed."""
    committer: Committer | None = None
    done = 0
    me = str(ProcessId.current())
    try:
        for home in homes:
            for root in spool_roots(home, db_url):
                if committer is None:
                    committer = Committer(RecordStore(db_url))
                done += committer.commit_leftovers(root, root / me)
    finally:
        if committer is not None:
            committer.store.close()
    return done


def start_sweeping(homes: Sequence[Path], db_url: str, stopping: threading.Event) -> None:
    """Sweep now and every :data:`SWEEP_EVERY` seconds until ``stopping`` is set."""

    def run() -> None:
        while not stopping.is_set():
            try:
                sweep(homes, db_url)
            except Exception as exc:  # the next sweep tries again
                log.warning("call records left by stopped workers: %s", exc)
            stopping.wait(SWEEP_EVERY)

    threading.Thread(target=run, name="spool-sweep", daemon=True).start()
