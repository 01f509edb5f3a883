"""Shared fixtures: isolated shellflow homes, databases on SQLite and the real PostgreSQL,
and ways to run ``flow`` in-process and in a subprocess.

Distributed tests skip with one line naming the missing server, unless
SHELLFLOW_REQUIRE_SERVICES=1 (CI), where a missing server fails them instead.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import templates

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_ADMIN_URL = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
REDIS_DBS = range(1, 16)  # db 0 is left to people; each test process takes one of these


def redis_url() -> str:
    """A Redis database of this test process's own (pytest-xdist runs several at once).

    Keys are per database; pub/sub channels are not, so tests also name their channels
    after their own sockets or processors.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    number = int(worker.removeprefix("gw") or 0)
    return f"redis://127.0.0.1:6379/{REDIS_DBS[number % len(REDIS_DBS)]}"


REDIS_URL = redis_url()
SERVICES = {
    "postgresql": (PG_HOST, PG_PORT),
    "redis": ("127.0.0.1", 6379),
    "rabbitmq": ("127.0.0.1", 5672),
}


def service_answers(name: str) -> bool:
    host, port = SERVICES[name]
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Skip (or, under SHELLFLOW_REQUIRE_SERVICES=1, fail) when a server does not answer."""
    if service_answers(name):
        return
    host, port = SERVICES[name]
    message = f"{name} is not answering on {host}:{port}"
    if os.environ.get("SHELLFLOW_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (SHELLFLOW_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the developer's own configuration or data."""
    for key in list(os.environ):
        if key.startswith("SHELLFLOW_") and key != "SHELLFLOW_REQUIRE_SERVICES":
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("NO_COLOR", "1")
    home = tmp_path / "home"
    monkeypatch.setenv("SHELLFLOW_HOME", str(home))
    return home


def _create_pg_database(template: str | None = None, name: str | None = None) -> str:
    """A new database of this test's own (``name`` replaces the one so named); a copy of
    ``template`` when one is named."""
    import psycopg2

    name = name or f"sf_test_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(PG_ADMIN_URL, connect_timeout=5)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    conn.close()
    return name


def migrated_pg_database() -> str:
    """A new database at the newest revision, copied from a migrated template.

    ``CREATE DATABASE ... TEMPLATE`` copies files: a few milliseconds, where running the
    migrations takes a second or more. ``flow db init`` itself is still covered by the tests
    of the CLI (tests/integration/test_db_commands.py, tests/e2e).
    """
    return _create_pg_database(template=templates.postgresql())


def _drop_pg_database(name: str) -> None:
    import psycopg2

    from shellflow.model.db import dispose_engines

    dispose_engines()
    roles = _shellflow_roles(name)
    conn = psycopg2.connect(PG_ADMIN_URL, connect_timeout=5)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in roles:  # cluster-wide: a test's users must not outlive its database
            # Kept while another test's database (the same user name) still uses it.
            with contextlib.suppress(psycopg2.Error):
                cur.execute(f'DROP ROLE IF EXISTS "{role}"')
    conn.close()


def _shellflow_roles(database: str) -> list[str]:
    """The login roles shellflow made for the users of ``database`` (``model.pg_roles``)."""
    import psycopg2

    from shellflow.model import pg_roles

    try:
        conn = psycopg2.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}", connect_timeout=5)
    except psycopg2.OperationalError:
        return []
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('users') IS NOT NULL")
            if not cur.fetchone()[0]:
                return []
            cur.execute("SELECT name FROM users")
            return [n for (n,) in cur.fetchall() if pg_roles.ours(cur, n)]
    finally:
        conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """An empty database of each kind, its URL also exported as SHELLFLOW_DB."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'model.db'}"
        monkeypatch.setenv("SHELLFLOW_DB", url)
        yield url
        from shellflow.model.db import dispose_engines

        dispose_engines()
        return
    require_service("postgresql")
    name = _create_pg_database()
    url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    monkeypatch.setenv("SHELLFLOW_DB", url)
    try:
        yield url
    finally:
        _drop_pg_database(name)


@pytest.fixture
def initialised_db(db_url: str) -> str:
    """``db_url``'s database at the newest revision, copied from a migrated template."""
    if db_url.startswith("sqlite"):
        return templates.copy_sqlite(Path(db_url.removeprefix("sqlite:///")))
    from shellflow.model.db import dispose_engines

    dispose_engines()  # no pooled connection may hold the empty database being replaced
    _create_pg_database(templates.postgresql(), name=db_url.rsplit("/", 1)[1])
    return db_url


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def _flow_executable() -> list[str]:
    script = Path(sys.executable).with_name("flow")
    if script.exists():
        return [str(script)]
    found = shutil.which("flow")
    return [found] if found else [sys.executable, "-m", "shellflow"]


def _patience(args: tuple[str, ...]) -> float:
    """Seconds to give ``flow ARGS``: 60, or its own ``--timeout`` plus 30."""
    for flag, value in itertools.pairwise(args):
        if flag == "--timeout":
            try:
                return max(60.0, float(value) + 30)
            except ValueError:
                break
    return 60.0


@pytest.fixture
def flow() -> FlowRunner:
    """Run ``flow`` in a subprocess, as a user would (stdin is not a terminal)."""
    return FlowRunner()


class FlowRunner:
    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
                 timeout: float | None = None) -> Result:  # fmt: skip
        """Run ``flow ARGS``; killed after ``timeout`` s (default: a minute, or half a minute
        more than the command's own ``--timeout``, so that one is what a test sees)."""
        proc = subprocess.run(
            [*_flow_executable(), *args],
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout if timeout is not None else _patience(args),
            env={**os.environ, **(env or {})},
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, **kwargs: object) -> Result:
        result = self(*args, **kwargs)  # type: ignore[arg-type]
        assert result.code == 0, f"flow {' '.join(args)} -> {result.code}\n{result.stderr}"
        return result


@pytest.fixture
def cli() -> CliRunnerFlow:
    """Run ``flow`` in-process through ``shellflow.commands.main`` (faster than a subprocess)."""
    return CliRunnerFlow()


class CliRunnerFlow:
    def __call__(self, *args: str, input: str | None = None) -> Result:
        from click.testing import CliRunner

        from shellflow.commands import main

        runner = CliRunner()
        result = runner.invoke(_MainWrapper(main), list(args), input=input or "")
        return Result(result.exit_code, result.stdout, result.stderr)

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.code == 0, f"flow {' '.join(args)} -> {result.code}\n{result.stderr}"
        return result


class _MainWrapper:
    """Lets CliRunner drive ``main()`` (which ends with sys.exit) like a click command."""

    name = "flow"

    def __init__(self, main: object) -> None:
        self._main = main

    def main(self, args: list[str], prog_name: str | None = None, **_: object) -> None:
        self._main(args)  # type: ignore[operator]
