"""Several agents of this one machine as nodes of one fleet (own homes, ``--node`` names),
started and stopped by pid for the fleet tests (``test_fleet``, ``test_failover``,
``test_cut_link``); the ``fleet`` fixture is in ``conftest.py``."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import _flow_executable
from tests.engine.agents import agent_env
from tests.engine.conftest import Deployment
from tests.engine.repos import examples_repo
from tests.waiting import poll

WORKERS = "SELECT name, process FROM worker WHERE process IS NOT NULL ORDER BY name"


@dataclass
class Fleet:
    d: Deployment
    agents: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    homes: dict[str, Path] = field(default_factory=dict)
    pids: set[int] = field(default_factory=set)  # every worker seen, for the clean-up

    def sample_network(self, tmp_path: Path, prefix: str) -> tuple[str, str]:
        """A ``-c 1`` processor of the examples' sample module (no hostname: placed by free
        CPUs) and one socket of it; its (processor, socket) names."""
        d = self.d
        proc, queue = d.name(f"{prefix}proc"), d.name(f"{prefix}q")
        socket = d.name(f"{prefix}.do_something")
        d.setup("add", "queue", "-n", queue, "-t", "direct")
        repo = str(examples_repo(tmp_path / "repo"))
        d.setup("add", "processor", "-n", proc, "-g", repo, "-mp", "examples/processors",
                "-m", "pyfi.processors.sample", "-c", "1")  # fmt: skip
        d.setup("add", "socket", "-n", socket, "-q", queue, "-pn", proc, "-t", "do_something")
        d.broker_queues.append(socket)
        d.broker_exchanges.append(queue)
        return proc, socket

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
