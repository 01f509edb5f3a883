"""Running ``flow agent start`` from tests, and never leaving a process behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import _flow_executable
from tests.engine.conftest import Deployment
from tests.engine.repos import local_package, new_repo, pyproject, version_module
from tests.waiting import poll

# pip inside the agent never reaches for an index: tests install from local folders only.
AGENT_ENV = {"PIP_NO_INDEX": "1"}
STATUS = "SELECT status, status_reason FROM processor WHERE name = ?"


def pinned_version_repos(root: Path) -> tuple[Path, Path]:
    """Two processor repositories that pin different versions of one local package ``sfdep``.

    The first pins 1.0 in ``requirements.txt``, the second 2.0 in its pyproject's
    dependencies; each module's ``version()`` says which one it imports. The deployer's and
    the agent's tests both need the pair to show that processors do not see each other's pins.
    """
    old = local_package(root / "pkgs" / "sfdep-1", "sfdep", "1.0")
    new = local_package(root / "pkgs" / "sfdep-2", "sfdep", "2.0")
    first = new_repo(root / "first", {
        "pyproject.toml": pyproject("first-proc", "0.1"),
        "first_proc.py": version_module("sfdep"),
        "requirements.txt": f"sfdep @ file://{old}\n",
    })  # fmt: skip
    second = new_repo(root / "second", {
        "pyproject.toml": pyproject("second-proc", "0.1", (f"sfdep @ file://{new}",)),
        "second_proc.py": version_module("sfdep"),
    })  # fmt: skip
    return first, second


def agent_env(d: Deployment) -> dict[str, str]:
    return {**os.environ, **d.env, **AGENT_ENV}


def processor(d: Deployment, name: str) -> dict[str, Any]:
    """The processor as ``flow ls processor -n NAME --json`` shows it."""
    return dict(json.loads(d.ok("ls", "processor", "-n", name, "--json").stdout))


def wait_status(d: Deployment, name: str, status: str, timeout: float = 90) -> dict[str, Any]:
    poll(
        lambda: d.query(STATUS, (name,))[0][0] == status,
        timeout,
        f"{name} to be {status}: {d.query(STATUS, (name,))}",
    )
    return processor(d, name)


def worker_pids(d: Deployment) -> list[int]:
    return [int(r[0]) for r in d.query("SELECT process FROM worker WHERE process IS NOT NULL")]


def agent_log(d: Deployment) -> str:
    home = Path(d.env["SHELLFLOW_HOME"])
    return "\n".join(p.read_text(errors="replace") for p in sorted(home.glob("**/*.log")))


@contextmanager
def running_agent(d: Deployment, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``flow agent start`` in the foreground of a subprocess, ready to serve."""
    home = Path(d.env["SHELLFLOW_HOME"])
    with open(home / "agent-test.log", "w") as log:
        proc = subprocess.Popen(
            [*_flow_executable(), "agent", "start", *args], env=agent_env(d), stdout=log,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    try:
        poll(
            lambda: (
                proc.poll() is not None
                or d.query("SELECT status FROM agent WHERE pid = ?", (proc.pid,)) == [("running",)]
            ),
            60,
            "the agent to register",
        )
        assert proc.poll() is None, agent_log(d)
        yield proc
    finally:
        stop_everything(d, proc)


def stop_everything(d: Deployment, proc: subprocess.Popen[str] | None = None) -> None:
    """Stop the agent (cleanly if it can) and any worker it left behind."""
    pids: list[int] = []
    with contextlib.suppress(Exception):
        pids = worker_pids(d)
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    elif proc is None:
        d.run("agent", "stop", "--timeout", "90")
    for pid in pids:
        with contextlib.suppress(OSError):
            if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.killpg(pid, signal.SIGKILL)
