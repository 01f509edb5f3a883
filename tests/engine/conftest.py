"""A live deployment per test: the embedded default, or RabbitMQ + Redis + PostgreSQL.

Each test gets its own home (short, for the unix socket's length limit), database, queue
names and worker process; everything is stopped and removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    PG_HOST,
    PG_PORT,
    FlowRunner,
    _create_pg_database,
    _drop_pg_database,
    require_service,
)

ROOT = Path(__file__).resolve().parents[2]
PROCESSORS = ROOT / "examples" / "processors"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_URL = "redis://127.0.0.1:6379/0"


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

    def start_worker(self, processor: str, concurrency: int = 1) -> subprocess.Popen[str]:
        from tests.conftest import _flow_executable

        log = open(Path(self.env["SHELLFLOW_HOME"]) / f"worker-{len(self.workers)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [*_flow_executable(), "worker", "start", "-n", processor, "-c", str(concurrency),
             "--path", str(PROCESSORS)],
            env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.workers.append(proc)
        return proc

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
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
        deadline = time.monotonic() + timeout
        while True:
            rows = self.query(sql, params)
            if rows == expect or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)

    def wait_rows(
        self, sql: str, params: tuple[Any, ...], count: int, timeout: float = 30
    ) -> list[tuple[Any, ...]]:
        """Poll a query until it returns ``count`` rows: a call's record is committed a few
        milliseconds after its result reaches the caller (docs/engine.md)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.query(sql, params)
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


@contextmanager
def deploy(kind: str, flow: FlowRunner) -> Iterator[Deployment]:
    home = Path(tempfile.mkdtemp(prefix="sf", dir="/tmp"))
    suffix = uuid.uuid4().hex[:8]
    env = {"SHELLFLOW_HOME": str(home), "SHELLFLOW_INI": str(home / "none.ini")}
    pg_name = None
    if kind == "embedded":
        env["SHELLFLOW_DB"] = f"sqlite:///{home / 'shellflow.db'}"
    else:
        for service in ("postgresql", "rabbitmq", "redis"):
            require_service(service)
        pg_name = _create_pg_database()
        env |= {
            "SHELLFLOW_DB": f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{pg_name}",
            "SHELLFLOW_BROKER": AMQP_URL,
            "SHELLFLOW_BACKEND": REDIS_URL,
            "SHELLFLOW_PUBSUB": REDIS_URL,
        }
    deployment = Deployment(kind, env, suffix, flow)
    try:
        deployment.ok("db", "init")
        yield deployment
    finally:
        deployment.stop_workers()
        if kind == "embedded":
            deployment.run("broker", "stop")
        else:
            from shellflow.engine.routing import delete_broker_objects

            delete_broker_objects(AMQP_URL, deployment.broker_queues, deployment.broker_exchanges)
            _drop_pg_database(pg_name or "")
        shutil.rmtree(home, ignore_errors=True)


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
    d.ok("add", "queue", "-n", names["queue"], "-t", "direct")
    d.ok("add", "processor", "-n", names["processor"], "-g", str(ROOT),
         "-mp", "examples/processors", "-m", "pyfi.processors.sample", "-h", "localhost",
         "-c", "1")  # fmt: skip
    for function in ("do_something", "do_this", "add_two"):
        d.ok("add", "socket", "-n", names[function], "-q", names["queue"], "-pn",
             names["processor"], "-t", function)  # fmt: skip
    d.broker_queues += [names[f] for f in ("do_something", "do_this", "add_two")]
    d.broker_exchanges.append(names["queue"])
    return names
