"""The agent acts with its own principal's rights (``engine/fleet/agent_rights.py``).

Without ``START_AGENT`` it ends before registering anything; without ``START_PROCESSOR`` it
neither deploys nor starts a processor asked to run; without ``STOP_PROCESSOR`` it leaves a
worker it was asked to stop; without ``UPDATE_PROCESSOR`` it writes no status. The owner (the
default principal) holds them all: the agent tests under tests/engine run as it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shellflow.config import load_settings
from shellflow.engine.fleet.agent import Agent
from shellflow.engine.fleet.agent_rights import AGENT_RIGHTS
from shellflow.engine.fleet.deploy import Source
from shellflow.engine.fleet.rows import Placed
from shellflow.errors import PermissionDenied
from shellflow.model.access import Principal
from tests import templates


def agent(tmp_path: Path, *rights: str) -> Agent:
    db = templates.copy_sqlite(tmp_path / "model.db")
    made = Agent(load_settings({"db": db, "home": str(tmp_path / "home")}), node="n9")
    made.principal = Principal("svc", rights=frozenset(rights))
    return made


def placed(requested: str) -> Placed:
    return Placed(
        id="p-id", name="p1", module="mod", source=Source("https://example.org/r.git"),
        concurrency=1, status="ready", requested=requested, reason=None, deploy=True,
        deployment_id=None, sockets=(),
    )  # fmt: skip


def stored_nodes(agent: Agent) -> list[Any]:
    from shellflow.model.listing import names, reader

    with reader(agent.settings.db) as conn:
        return names(conn, "node")


def test_without_start_agent_it_registers_nothing(tmp_path: Path) -> None:
    refused = agent(tmp_path, *(r for r in AGENT_RIGHTS if r != "START_AGENT"))
    with pytest.raises(PermissionDenied, match=r"^svc lacks the START_AGENT right on node n9$"):
        refused.run()
    assert stored_nodes(refused) == []


def test_without_start_processor_it_neither_deploys_nor_starts(tmp_path: Path) -> None:
    refused = agent(tmp_path, "START_AGENT", "UPDATE_PROCESSOR")
    with pytest.raises(PermissionDenied, match="START_PROCESSOR right on p1"):
        refused._reconcile_one("p1", placed("running"))
    managed = refused.managed["p1"]
    assert (managed.future, managed.proc, managed.deployed) == (None, None, None)
    refused.pool.shutdown()


def test_without_update_processor_it_writes_no_status(tmp_path: Path) -> None:
    refused = agent(tmp_path, "START_AGENT", "START_PROCESSOR", "STOP_PROCESSOR")
    spec = placed("stopped")
    with pytest.raises(PermissionDenied, match="UPDATE_PROCESSOR right on p1"):
        refused._reconcile_one("p1", spec)
    assert (spec.status, spec.reason) == ("ready", None)  # nothing written, nothing assumed
    refused.pool.shutdown()


def test_the_owner_holds_every_right_the_agent_needs() -> None:
    owner = Principal("me", local_owner=True)
    assert all(owner.holds(right) for right in AGENT_RIGHTS)
