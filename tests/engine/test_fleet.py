"""Several nodes against one PostgreSQL + RabbitMQ + Redis: placement by node, drain and
cordon, and what an agent killed with ``kill -9`` leaves (nothing serving, its processor
placed again elsewhere).

The nodes are agents of this one machine, each with its own home and ``--node`` name: they
share a hostname, which is what used to make every one of them serve a processor placed on
one (no Linux namespaces here: see issue 19 for the harness that would give each its own).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import FlowRunner, _flow_executable
from tests.engine.agents import agent_env, wait_status
from tests.engine.conftest import Deployment, deploy
from tests.engine.repos import examples_repo
from tests.waiting import poll

WORKERS = "SELECT name, process FROM worker WHERE process IS NOT NULL ORDER BY name"


@dataclass
class Fleet:
    d: Deployment
    agents: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    homes: dict[str, Path] = field(default_factory=dict)
    pids: set[int] = field(default_factory=set)  # every worker seen, for the clean-up

    def start(self, node: str) -> None:
        home = self.homes[node] = Path(tempfile.mkdtemp(prefix=f"sf{node}", dir="/tmp"))
        env = {**agent_env(self.d), "SHELLFLOW_HOME": str(home)}
        with open(home / "agent-test.log", "w") as log:
            proc = subprocess.Popen(
                [*_flow_executable(), "agent", "start", "--node", node, "--cpus", "2"],
                env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        self.agents[node] = proc
        poll(
            lambda: (
                proc.poll() is not None
                or self.d.query("SELECT status FROM agent WHERE pid = ?", (proc.pid,))
                == [("running",)]
            ),
            60,
            f"agent {node} to register",
        )
        assert proc.poll() is None, self.log(node)

    def log(self, node: str) -> str:
        return (self.homes[node] / "agent-test.log").read_text(errors="replace")

    def workers(self) -> dict[str, int]:
        """Worker rows with a process: by name (``PROC@NODE``)."""
        found = {name: int(pid) for name, pid in self.d.query(WORKERS)}
        self.pids |= set(found.values())
        return found

    def placed_on(self) -> list[str]:
        sql = "SELECT n.name FROM deployment d JOIN node n ON n.id = d.node_id ORDER BY n.name"
        return [r[0] for r in self.d.query(sql)]

    def close(self) -> None:
        for proc in self.agents.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.agents.values():
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in self.pids:
            with contextlib.suppress(OSError):
                if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.killpg(pid, signal.SIGKILL)
        for home in self.homes.values():
            shutil.rmtree(home, ignore_errors=True)


def group_gone(pgid: int) -> bool:
    """Whether no live process (zombies aside) is left in process group ``pgid``: the worker
    and its pool."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return False
    return True


@pytest.fixture
def fleet(flow: FlowRunner) -> Iterator[Fleet]:
    with deploy("distributed", flow) as d:
        fleet = Fleet(d)
        try:
            yield fleet
        finally:
            fleet.close()


def test_three_nodes_of_one_machine_drain_cordon_and_an_agent_killed(
    fleet: Fleet, tmp_path: Path
) -> None:
    d = fleet.d
    proc, queue, socket = d.name("fleetproc"), d.name("fleetq"), d.name("fleet.do_something")
    d.setup("add", "queue", "-n", queue, "-t", "direct")
    d.setup("add", "processor", "-n", proc, "-g", str(examples_repo(tmp_path / "repo")),
            "-mp", "examples/processors", "-m", "pyfi.processors.sample", "-c", "1")  # fmt: skip
    d.setup("add", "socket", "-n", socket, "-q", queue, "-pn", proc, "-t", "do_something")
    d.broker_queues.append(socket)
    d.broker_exchanges.append(queue)
    for node in ("n1", "n2", "n3"):
        fleet.start(node)

    # One -c 1 processor without a hostname: one deployment, one worker in the whole fleet.
    wait_status(d, proc, "running", timeout=180)
    out = d.ok("task", "run", "-s", socket, "--data", '"x"', "--timeout", "90")
    assert out.stdout == "TEXT:x\n"
    [first] = fleet.placed_on()
    assert list(fleet.workers()) == [f"{proc}@{first}"]
    others = sorted({"n1", "n2", "n3"} - {first})
    for node in others:  # they never even deployed it (they used to, each its own worker)
        assert f"deploying {proc}" not in fleet.log(node), fleet.log(node)
    lines = d.ok("ls", "nodes", "--json").stdout.splitlines()
    listed = {r["name"]: r for r in map(json.loads, lines)}
    assert listed[first]["processors"] == [proc] and listed[first]["workers"] == 1
    assert listed[first]["free_cpus"] == 1 and listed[others[0]]["free_cpus"] == 2

    # Cordon one of the others, drain the first: the processor moves to the third node,
    # whose agent starts a worker; the first node's agent stops its own.
    cordoned, target = others
    d.ok("node", "cordon", "-n", cordoned)
    [old_pid] = fleet.workers().values()
    d.ok("node", "drain", "-n", first)
    poll(lambda: list(fleet.workers()) == [f"{proc}@{target}"], 180,
         lambda: f"the worker to move to {target}: {fleet.workers()}")  # fmt: skip
    poll(lambda: group_gone(old_pid), 90, "the drained node's worker to exit")
    wait_status(d, proc, "running", timeout=180)
    out = d.ok("task", "run", "-s", socket, "--data", '"y"', "--timeout", "90")
    assert out.stdout == "TEXT:y\n"

    # kill -9 the agent serving it: its worker stops serving on its own (within about a
    # second: shellflow.engine.worker.watchdog), and once the node's heartbeat is stale the
    # processor is placed on the node uncordoned meanwhile.
    [(_, worker_pid)] = fleet.workers().items()
    killed = fleet.agents[target]
    killed.kill()
    killed.wait()
    poll(lambda: group_gone(worker_pid), 60, "the killed agent's worker to exit")
    worker_log = (fleet.homes[target] / "logs" / f"{proc}.log").read_text(errors="replace")
    assert "is gone: stopping this worker" in worker_log, worker_log[-2000:]
    d.ok("node", "uncordon", "-n", cordoned)
    poll(lambda: fleet.placed_on() == [cordoned], 90, "the processor to be placed again")
    poll(lambda: f"{proc}@{cordoned}" in fleet.workers(), 180, "a worker on the new node")
    wait_status(d, proc, "running", timeout=180)
    out = d.ok("task", "run", "-s", socket, "--data", '"z"', "--timeout", "90")
    assert out.stdout == "TEXT:z\n"
