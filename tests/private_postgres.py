"""A PostgreSQL server of one test's own, for tests that kill or restart the database.

The shared PostgreSQL on 5432 holds every other running test's database. This cluster has
its own data folder, free port and unix socket folder, trusts local connections, and is
stopped by its postmaster's pid. ``initdb`` and ``postgres`` refuse to run as root, so
both run as a dedicated unprivileged user, :data:`OS_USER`, created when missing (CI runs
as root); as any other user without it the tests skip, saying why.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from tests.private_rabbitmq import LOOPBACK, _answers, _free_port, _tail
from tests.waiting import poll, signal_and_wait

OS_USER = "shellflow-test-pg"


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (with initdb and postgres)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> tuple[int, ...]:
    part = Path(path).parent.parent.name
    return tuple(int(p) for p in part.split(".") if p.isdigit())


def os_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run PostgreSQL as: made if missing and we are root."""
    with suppress(KeyError):
        return pwd.getpwnam(OS_USER)
    if os.geteuid() != 0:
        return None
    subprocess.run(
        ["useradd", "--system", "--no-create-home", OS_USER], capture_output=True, check=False
    )  # fmt: skip (a parallel test may win)
    with suppress(KeyError):
        return pwd.getpwnam(OS_USER)
    return None


class PrivatePostgres:
    """One postmaster on ``host``:``port``; :meth:`start` again after :meth:`stop`."""

    def __init__(
        self, bin_dir: Path, user: pwd.struct_passwd, folder: Path, host: str = LOOPBACK
    ) -> None:
        self.bin = bin_dir
        self.host = host
        self.user = user
        self.folder = folder
        self.data = folder / "data"
        self.sockets = folder / "sockets"
        self.port = _free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def answers(self) -> bool:
        return _answers(self.port, self.host)

    def _as_user(self) -> dict[str, Any]:
        """subprocess arguments that run a command as :data:`OS_USER` (when we are root)."""
        env = {**os.environ, "HOME": str(self.folder), "LC_ALL": "C"}
        if os.geteuid() != self.user.pw_uid:
            return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": [],
                    "env": env}  # fmt: skip
        return {"env": env}

    def initdb(self) -> None:
        if self.data.exists():
            return
        self.sockets.mkdir(exist_ok=True)
        for path in (self.folder, self.sockets):
            os.chown(path, self.user.pw_uid, self.user.pw_gid)
        result = subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
             "--no-sync", "-E", "UTF8"],
            capture_output=True, text=True, check=False, **self._as_user(),
        )  # fmt: skip
        if result.returncode != 0:
            pytest.fail(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")
        if self.host != LOOPBACK:  # trusted from the host's subnets too (namespaced nodes)
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write("host all all samenet trust\n")

    def start(self, timeout: float = 60) -> None:
        """Start the postmaster on its port (again) and wait until it takes connections."""
        if self.process is not None and self.process.poll() is None:
            return
        self.initdb()
        log = self.folder / "postgres.log"
        with open(log, "ab") as out:
            os.chown(log, self.user.pw_uid, self.user.pw_gid)
            self.process = subprocess.Popen(
                [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-k", str(self.sockets), "-c", f"listen_addresses={self.host}",
                 "-c", "fsync=off", "-c", "full_page_writes=off"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                **self._as_user(),
            )  # fmt: skip
        process = self.process
        poll(lambda: self._ready() or process.poll() is not None, timeout,
             f"a private PostgreSQL on {self.host}:{self.port}")  # fmt: skip
        if process.poll() is not None:
            pytest.fail("the private PostgreSQL did not start:\n" + _tail(log))

    def _ready(self) -> bool:
        """Accepting connections, not merely listening (it listens while it recovers)."""
        if not self.answers():
            return False
        result = subprocess.run(
            [str(self.bin / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)],
            capture_output=True, check=False,
        )  # fmt: skip
        return result.returncode == 0

    def stop(self, timeout: float = 60) -> None:
        """Stop it by the postmaster's pid (SIGINT: a fast shutdown, sessions ended)."""
        self._signal(signal.SIGINT, timeout)

    def kill(self) -> None:
        """Kill the postmaster and its backends (SIGKILL to its process group), as a crash."""
        process = self.process
        if process is None:
            return
        with suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def _signal(self, signum: int, timeout: float) -> None:
        signal_and_wait(self.process, signum, timeout, self.kill)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through psql on the unix socket; its output."""
        result = subprocess.run(
            [str(self.bin / "psql"), "-h", str(self.sockets), "-p", str(self.port), "-U",
             "postgres", "-d", database, "-At", "-c", sql],
            capture_output=True, text=True, check=True, **self._as_user(),
        )  # fmt: skip
        return result.stdout.strip()


@contextmanager
def private_postgres(host: str = LOOPBACK) -> Iterator[PrivatePostgres]:
    """Start a PostgreSQL cluster on a free port of ``host`` (loopback unless said otherwise);
    stop it (by its pid) afterwards."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server in /usr/lib/postgresql/*/bin")
    user = os_user()
    if user is None:
        pytest.skip(f"no OS user {OS_USER} to run PostgreSQL as, and not root to add one")
    folder = Path(tempfile.mkdtemp(prefix="sf-pg-"))
    server = PrivatePostgres(bin_dir, user, folder, host)
    try:
        server.start()
        yield server
    finally:
        server.stop(timeout=30)
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)
