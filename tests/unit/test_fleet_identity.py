"""The agent's rows carry pid and start time: a reused pid neither blocks nor gets killed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, update

from shellflow.engine.fleet import rows as fleet
from shellflow.engine.pids import ProcessId, started
from shellflow.errors import Conflict
from shellflow.model.tables import Base

pytestmark = pytest.mark.skipif(started(os.getpid()) == "0", reason="no /proc start times")
FACTS = {"cpus": 1}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_engine(f"sqlite:///{tmp_path / 'fleet.db'}")
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


def _reused(process: ProcessId) -> ProcessId:
    """``process``'s pid as it was recorded for an earlier process that has ended."""
    return ProcessId(process.pid, str(int(process.start) - 1))


def test_a_live_agent_holds_its_node(engine: Engine) -> None:
    fleet.register(engine, "n1", "host", FACTS, ProcessId.current())
    with pytest.raises(Conflict, match="already runs"):
        fleet.register(engine, "n1", "host", FACTS, ProcessId(_dead_pid()))


def test_an_agent_whose_pid_was_reused_does_not_hold_its_node(engine: Engine) -> None:
    """The row says running (the agent was killed); its pid now belongs to this process."""
    fleet.register(engine, "n1", "host", FACTS, _reused(ProcessId.current()))
    fleet.register(engine, "n1", "host", FACTS, ProcessId(_dead_pid()))  # no Conflict


def test_an_agent_row_without_a_start_time_still_reads(engine: Engine) -> None:
    fleet.register(engine, "n1", "host", FACTS, ProcessId.current())
    with engine.begin() as conn:  # as a version before start times wrote it
        conn.execute(update(fleet.AGENT).values(pid_start=None))
    with pytest.raises(Conflict):
        fleet.register(engine, "n1", "host", FACTS, ProcessId(_dead_pid()))


def test_leftover_workers_come_back_with_their_start_time(engine: Engine) -> None:
    _, agent_id, _ = fleet.register(engine, "n1", "host", FACTS, ProcessId.current())
    with engine.begin() as conn:
        conn.execute(
            fleet.PROCESSOR.insert().values(
                id="p1", name="p", module="m", gitrepo="g", created=fleet.utcnow()
            )
        )
    me, reused = ProcessId.current(), _reused(ProcessId.current())
    for name, process in (("a", me), ("b", reused)):
        fleet.worker_started(
            engine, name=name, processor_id="p1", agent_id=agent_id, deployment_id=None,
            process=process, hostname="host", concurrency=1, workdir="w", broker="b",
            backend="b",
        )  # fmt: skip
    found = dict(fleet.leftover_workers(engine, agent_id, "host"))
    assert sorted(found.values(), key=str) == sorted([me, reused], key=str)
    alive = {p for p in found.values() if p.known and p.alive()}
    assert alive == {me}  # the reused pid is not signalled


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
