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
import threading
from collections.abc import Callable
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

    namespaced = False  # the nodes share this machine's network and hostname

    def command(self, node: str) -> list[str]:
        """The command that starts ``node``'s agent: here, named by ``--node``."""
        return [*_flow_executable(), "agent", "start", "--node", node, "--cpus", "2"]

    def start(self, node: str) -> None:
        home = self.homes[node] = Path(tempfile.mkdtemp(prefix=f"sf{node}", dir="/tmp"))
        env = {**agent_env(self.d), "SHELLFLOW_HOME": str(home)}
        with open(home / "agent-test.log", "w") as log:
            proc = subprocess.Popen(
                self.command(node), env=env, stdout=log, stderr=subprocess.STDOUT, text=True
            )
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

    def processes(self, node: str) -> list[int]:
        """The worker processes (main and pool) running on ``node``: its agent's descendants."""
        agent = self.agents[node].pid
        return [pid for pid in descendants(agent) if _is_worker(pid)]

    def cut(self, node: str) -> None:
        """Cut ``node`` off, as far as one machine can: freeze its agent and its workers
        (``SIGSTOP``, issue 19's stand-in for a cut link that comes back)."""
        self._signal(node, signal.SIGSTOP)

    def restore(self, node: str) -> None:
        """Thaw what :meth:`cut` froze."""
        self._signal(node, signal.SIGCONT)

    def _signal(self, node: str, signum: int) -> None:
        pids = [self.agents[node].pid, *self.processes(node)]
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signum)

    def placed_on(self) -> list[str]:
        sql = "SELECT n.name FROM deployment d JOIN node n ON n.id = d.node_id ORDER BY n.name"
        return [r[0] for r in self.d.query(sql)]

    def close(self) -> None:
        for proc in self.agents.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a node a failed test left cut (frozen)
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


def _processes() -> list[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every live process (zombies aside), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            found.append((int(entry.name), int(fields[1]), int(fields[2])))
    return found


def group_gone(pgid: int) -> bool:
    """Whether no live process (zombies aside) is left in process group ``pgid``: the worker
    and its pool."""
    return all(group != pgid for _, _, group in _processes())


def _is_worker(pid: int) -> bool:
    try:
        return b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def descendants(root: int) -> list[int]:
    """The live processes (zombies aside) descended from ``root``, by their parent pids."""
    children: dict[int, list[int]] = {}
    for pid, parent, _ in _processes():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return sorted(found)


def stream_in_two_parts(
    d: Deployment, socket: str, out: Path, errors: Path, first: int, calls: int,
    resumed: threading.Event,
) -> subprocess.Popen[str]:  # fmt: skip
    """``flow task run --stream -s SOCKET`` of the numbers 1 to ``calls``, its results in
    ``out``: the first ``first`` sent at once, the others only once ``resumed`` is set (after
    a cut node comes back: calls a stale worker would compete for)."""
    with open(out, "w") as sink, open(errors, "w") as err:
        stream = subprocess.Popen(
            [*_flow_executable(), "task", "run", "-s", socket, "--stream", "--timeout", "900"],
            env={**os.environ, **d.env}, stdin=subprocess.PIPE, stdout=sink, stderr=err,
            text=True,
        )  # fmt: skip
    assert stream.stdin is not None
    feed = stream.stdin

    def feeder() -> None:
        with contextlib.suppress(BrokenPipeError):
            feed.write("".join(f"{i}\n" for i in range(1, first + 1)))
            feed.flush()
            resumed.wait(900)
            feed.write("".join(f"{i}\n" for i in range(first + 1, calls + 1)))
            feed.close()

    threading.Thread(target=feeder, daemon=True).start()
    return stream


def lines(path: Path) -> list[str]:
    """The lines of ``path`` so far (none before it exists)."""
    return path.read_text().splitlines() if path.exists() else []


def check_each_call_once(
    d: Deployment, socket: str, out: Path, calls: int, why: Callable[[], str] = lambda: ""
) -> None:
    """Every result of the numbers 1 to ``calls`` in ``out``, in order, and one call row per
    call, each ``finished`` (committed just after its result: polled)."""
    results = lines(out)
    assert results == [str(i) for i in range(1, calls + 1)], results[:5]
    states = "SELECT state, count(*) FROM call WHERE name = ? GROUP BY state"
    poll(lambda: d.query(states, (socket,)) == [("finished", calls)], 120,
         lambda: f"{d.query(states, (socket,))} {why()}")  # fmt: skip
    rows = d.query("SELECT count(*), count(DISTINCT id) FROM call WHERE name = ?", (socket,))
    assert rows == [(calls, calls)]


def stale_runs(served: Path, stale: int, first: int) -> tuple[list[tuple[int, ...]], list[int]]:
    """The runs noted in ``served`` (number, worker pid) and the numbers the ``stale`` worker
    ran, checked: some before the cut (within the first ``first``), none sent after it."""
    runs = [tuple(map(int, line.split())) for line in lines(served)]
    by_stale = sorted(n for n, pid in runs if pid == stale)
    assert by_stale and by_stale[0] <= first, runs[:5]
    assert [n for n in by_stale if n > first] == [], by_stale[-5:]
    return runs, by_stale
