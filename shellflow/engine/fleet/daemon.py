"""An agent's pidfile, running it in the background, and stopping it.

The pidfile ``<home>/agent-<node>.pid`` is locked (``flock``) by the agent for as long as it
runs, whether in the foreground or detached. The lock, not the number in the file, says
whether an agent runs: a pid left behind by a crash (and perhaps reused by another program)
is never signalled. ``flow agent stop`` sends SIGTERM to the lock holder and waits for the
lock to be released, which happens once the agent has stopped its workers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from shellflow.config import ENV, Settings
from shellflow.errors import CallFailed, Conflict, TimedOut
from shellflow.private import private_dir, private_file

START_TIMEOUT = 60.0


def safe_node(node: str) -> str:
    return "".join(c if c.isalnum() or c in "._-@" else "_" for c in node)[:120] or "_"


def pidfile_path(home: Path, node: str) -> Path:
    return home / f"agent-{safe_node(node)}.pid"


def log_path(home: Path, node: str) -> Path:
    return home / "logs" / f"agent-{safe_node(node)}.log"


class PidFile:
    """Held by a running agent: acquired before it registers, released when it has stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        private_dir(self.path.parent)
        fd = private_file(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            pid = _read(self.path)
            holder = f" (pid {pid})" if pid else ""
            raise Conflict(f"an agent already runs with pidfile {self.path}{holder}") from None
        self._fd = fd

    def write(self, pid: int) -> None:
        if self._fd is None:
            raise RuntimeError("pidfile not acquired")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{pid}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None


def _read(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def running_pid(path: Path) -> int | None:
    """The pid of the agent holding this pidfile; 0 while it starts; None when none runs."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:  # locked: an agent holds it
        return _read(path) or 0
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def stop(home: Path, node: str, timeout: float) -> int | None:
    """SIGTERM the node's agent and wait until it has stopped; its pid, None if none ran."""
    path = pidfile_path(home, node)
    pid = running_pid(path)
    if not pid:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running_pid(path) is not None:
        if time.monotonic() > deadline:
            raise TimedOut(f"the agent (pid {pid}) did not stop within {timeout:g} s")
        time.sleep(0.05)
    return pid


def detach(
    settings: Settings, node: str, cpus: int | None, loglevel: str, extra: Sequence[str] = ()
) -> tuple[int, Path]:
    """Start ``flow agent start`` in the background; return once it runs (pid, log file).
    ``extra`` are more options of ``flow agent start`` (``--run-as USER``)."""
    home = settings.home
    path = pidfile_path(home, node)
    running = running_pid(path)
    if running is not None:
        holder = f" (pid {running})" if running else ""
        raise Conflict(f"an agent already runs with pidfile {path}{holder}")
    logfile = log_path(home, node)
    private_dir(logfile.parent)
    command = [sys.executable, "-P", "-m", "shellflow", "agent", "start", "--node", node,
               "--loglevel", loglevel]  # fmt: skip
    if cpus:
        command += ["--cpus", str(cpus)]
    command += extra
    env = os.environ | {ENV[key]: settings[key] for key in ENV}
    with os.fdopen(private_file(logfile), "ab") as out:
        proc = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT
    while running_pid(path) != proc.pid:
        if proc.poll() is not None:
            tail = _tail(logfile)
            raise CallFailed(f"the agent did not start (exit {proc.returncode}): {tail}")
        if time.monotonic() > deadline:
            raise TimedOut(f"the agent did not start within {START_TIMEOUT:g} s; see {logfile}")
        time.sleep(0.05)
    return proc.pid, logfile


def _tail(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip() if lines else "no log"
