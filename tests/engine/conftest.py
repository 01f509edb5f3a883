"""A live deployment per test: the embedded default, or RabbitMQ + Redis + PostgreSQL.

Each test gets its own home (short, for the unix socket's length limit), database, queue
names, Redis database and worker processes; everything is stopped and removed afterwards.
Set-up is in-process and cheap (a copied migrated template, objects added through the CLI
in this process); what a test checks still runs ``flow`` in a subprocess, as a user would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests import templates
from tests.conftest import (
    PG_HOST,
    PG_PORT,
    REDIS_URL,
    FlowRunner,
    Result,
    _drop_pg_database,
    _MainWrapper,
    migrated_pg_database,
    require_service,
)
from tests.waiting import poll, poll_value

if TYPE_CHECKING:
    from tests.engine.fleet import Fleet

ROOT = Path(__file__).resolve().parents[2]
PROCESSORS = ROOT / "examples" / "processors"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


@dataclass
class Deployment:
    kind: str
    env: dict[str, str]
    suffix: str
    flow: FlowRunner
    workers: list[subprocess.Popen[str]] = field(default_factory=list)
    broker_queues: list[str] = field(default_factory=list)
    broker_exchanges: list[str] = field(default_factory=list)

    def name(self, base: str) -> str:
        return f"{base}.{self.suffix}"

    def run(self, *args: str, env: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.flow(*args, env={**self.env, **(env or {})}, **kwargs)

    def ok(self, *args: str, env: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.flow.ok(*args, env={**self.env, **(env or {})}, **kwargs)

    def setup(self, *args: str) -> Result:
        """Run ``flow ARGS`` in this process, for set-up a test does not check.

        Milliseconds instead of a third of a second for a subprocess; the same command,
        so what it builds is what a user's ``flow`` builds.
        """
        from click.testing import CliRunner

        from shellflow.commands import main

        result = CliRunner().invoke(_MainWrapper(main), list(args), env=self.env)  # type: ignore[arg-type]
        assert result.exit_code == 0, f"flow {' '.join(args)} -> {result.exit_code}\n" + (
            result.stderr or repr(result.exception)
        )
        return Result(result.exit_code, result.stdout, result.stderr)

    def start_worker(self, processor: str, concurrency: int = 1) -> subprocess.Popen[str]:
        from tests.conftest import _flow_executable

        log = open(Path(self.env["SHELLFLOW_HOME"]) / f"worker-{len(self.workers)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [*_flow_executable(), "worker", "start", "-n", processor, "-c", str(concurrency),
             "--path", str(PROCESSORS)],
            env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # its own process group: the pool goes with it
        )  # fmt: skip
        self.workers.append(proc)
        return proc

    def kill_workers(self) -> None:
        """End the workers and their pools at once: at teardown nothing they hold matters.

        A warm shutdown waits on Celery's pool and event loop (two seconds or more); the
        deployment's database, queues and home are deleted right after this.
        """
        for proc in self.workers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.workers:
            proc.wait()
        self.workers.clear()

    def worker_log(self) -> str:
        home = Path(self.env["SHELLFLOW_HOME"])
        return "\n".join(p.read_text() for p in sorted(home.glob("worker-*.log")))

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        from shellflow.model.listing import reader

        with reader(self.env["SHELLFLOW_DB"]) as conn:
            return conn.query(sql, params)

    def wait_for(self, sql: str, params: tuple[Any, ...], expect: Any, timeout: float = 30) -> Any:
        """Poll a query until it returns ``expect`` (records are written by other processes)."""
        return poll_value(lambda: self.query(sql, params), expect, timeout, f"{sql} {params}")

    def wait_rows(
        self, sql: str, params: tuple[Any, ...], count: int, timeout: float = 30
    ) -> list[tuple[Any, ...]]:
        """Poll a query until it returns ``count`` rows: a call's record is committed a few
        milliseconds after its result reaches the caller (docs/engine.md)."""
        poll(
            lambda: len(self.query(sql, params)) >= count,
            timeout,
            lambda: f"{count} rows of {sql} {params}; there are {self.query(sql, params)!r}",
        )
        return self.query(sql, params)


@contextmanager
def deploy(kind: str, flow: FlowRunner, broker: str = AMQP_URL) -> Iterator[Deployment]:
    """A deployment of ``kind``; a distributed one on ``broker`` (the shared RabbitMQ)."""
    home = Path(tempfile.mkdtemp(prefix="sf", dir="/tmp"))
    suffix = uuid.uuid4().hex[:8]
    env = {"SHELLFLOW_HOME": str(home), "SHELLFLOW_INI": str(home / "none.ini")}
    pg_name = None
    if kind == "embedded":
        env["SHELLFLOW_DB"] = templates.copy_sqlite(home / "shellflow.db")
    else:
        for service in ("postgresql", "rabbitmq", "redis"):
            require_service(service)
        pg_name = migrated_pg_database()
        env |= {
            "SHELLFLOW_DB": f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{pg_name}",
            "SHELLFLOW_BROKER": broker,
            "SHELLFLOW_BACKEND": REDIS_URL,
            "SHELLFLOW_PUBSUB": REDIS_URL,
        }
    deployment = Deployment(kind, env, suffix, flow)
    try:
        yield deployment
    finally:
        deployment.kill_workers()
        if kind == "embedded":
            from shellflow.model.db import dispose_engines

            dispose_engines()  # set-up ran in this process: close its SQLite connections
            _stop_embedded_broker(home)
        else:
            from shellflow.engine.transport.routing import delete_broker_objects

            delete_broker_objects(broker, deployment.broker_queues, deployment.broker_exchanges)
            _drop_pg_database(pg_name or "")
        shutil.rmtree(home, ignore_errors=True)


def _stop_embedded_broker(home: Path) -> None:
    """Kill the home's embedded broker, if one started (the home is deleted next)."""
    for pidfile in home.rglob("broker.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGKILL)
            poll(lambda pid=pid: not Path(f"/proc/{pid}").exists() or _zombie(pid), 10,
                 f"the embedded broker (pid {pid}) to end")  # fmt: skip


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


@pytest.fixture(params=["embedded", "distributed"])
def deployment(request: pytest.FixtureRequest, flow: FlowRunner) -> Iterator[Deployment]:
    """Each test twice: on the embedded default and on RabbitMQ + Redis + PostgreSQL."""
    with deploy(request.param, flow) as deployment:
        yield deployment


@pytest.fixture
def live(flow: FlowRunner) -> Iterator[tuple[Deployment, dict[str, str]]]:
    """The embedded default with the quick start's network and a worker serving it."""
    with deploy("embedded", flow) as deployment:
        network = build_network(deployment)
        deployment.start_worker(network["processor"], concurrency=2)
        yield deployment, network


@pytest.fixture
def chaos(deployment: Deployment) -> dict[str, str]:
    """The chaos processor's network (``tests.engine.chaos``) on the deployment."""
    from tests.engine.chaos import chaos_network

    return chaos_network(deployment)


@pytest.fixture
def client(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Python client on the deployment's settings (``tests.engine.chaos.Client``)."""
    from tests.engine.chaos import Client

    return Client(deployment, monkeypatch)


@pytest.fixture
def network(deployment: Deployment) -> dict[str, str]:
    return build_network(deployment)


def build_network(d: Deployment) -> dict[str, str]:
    """The quick start's network (spec 5.5) plus the join example's add_two."""
    names = {
        "queue": d.name("pyfi.queue1"),
        "processor": d.name("proc1"),
        "do_something": d.name("pyfi.processors.sample.do_something"),
        "do_this": d.name("pyfi.processors.sample.do_this"),
        "add_two": d.name("pyfi.processors.sample.add_two"),
    }
    d.setup("add", "queue", "-n", names["queue"], "-t", "direct")
    d.setup("add", "processor", "-n", names["processor"], "-g", str(ROOT),
         "-mp", "examples/processors", "-m", "pyfi.processors.sample", "-h", "localhost",
         "-c", "1")  # fmt: skip
    for function in ("do_something", "do_this", "add_two"):
        d.setup("add", "socket", "-n", names[function], "-q", names["queue"], "-pn",
             names["processor"], "-t", function)  # fmt: skip
    d.broker_queues += [names[f] for f in ("do_something", "do_this", "add_two")]
    d.broker_exchanges.append(names["queue"])
    return names


def module_network(
    d: Deployment, module: str, functions: tuple[str, ...], *processor_options: str
) -> dict[str, str]:
    """One queue and one processor serving ``pyfi.processors.MODULE`` from examples/, one
    socket per function (each with its dead-letter queue cleaned up), on ``-c 1`` unless
    ``processor_options`` say otherwise; names keyed ``queue``, ``processor`` and by function."""
    names = {"queue": d.name(f"{module}.q"), "processor": d.name(module)}
    names |= {f: d.name(f"pyfi.processors.{module}.{f}") for f in functions}
    d.setup("add", "queue", "-n", names["queue"], "-t", "direct")
    d.setup("add", "processor", "-n", names["processor"], "-g", str(ROOT), "-mp",
            "examples/processors", "-m", f"pyfi.processors.{module}", "-h", "localhost",
            "-c", "1", *processor_options)  # fmt: skip
    for function in functions:
        d.setup("add", "socket", "-n", names[function], "-q", names["queue"], "-pn",
                names["processor"], "-t", function)  # fmt: skip
    d.broker_queues += [names[f] for f in functions] + [names[f] + ".dead" for f in functions]
    d.broker_exchanges.append(names["queue"])
    return names


@pytest.fixture
def fleet(flow: FlowRunner) -> Iterator[Fleet]:
    """A distributed deployment whose nodes are agents of this machine (``tests.engine.fleet``),
    each stopped by pid at the end."""
    from tests.engine.fleet import Fleet

    with deploy("distributed", flow) as d:
        nodes = Fleet(d)
        try:
            yield nodes
        finally:
            nodes.close()
