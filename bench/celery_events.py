"""What Celery's task events cost: shellflow's burst throughput with and without
``--celery-events`` (``flow worker start --celery-events``, which ``flow agent start
--celery-events`` passes to its workers), in the same session.

For each deployment (``bench/_deploy.py``: the embedded default, or RabbitMQ + Redis results
+ PostgreSQL) it alternates, over a few rounds, a shellflow worker started without the flag
and one started with it (the switch, a worker's start-up, is not measured), each serving the
same socket; each round sends a burst of N calls and awaits every result. It prints the
medians and the ratio (with events / without). ``--listen`` also runs Celery's own
``EventReceiver`` (what ``celery events`` and Flower run) in this process for the whole
session, so that the events are consumed rather than dropped by a broker with no queue bound.
It prints and exits 0; it is a measurement, not a test.

    python bench/celery_events.py [--deployment embedded|distributed|both] [--rounds 5]
        [--burst 1000] [--concurrency 2] [--listen]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from _deploy import Setup, Sides, deployment
from engine import burst


def swap_worker(setup: Setup, processor: str, concurrency: int, events: bool) -> None:
    """Stop the shellflow worker (``setup.procs[0]``) and start one with or without events."""
    old = setup.procs[0]
    old.send_signal(signal.SIGTERM)
    old.wait(timeout=60)
    script = Path(sys.executable).with_name("flow")
    log = open(setup.home / "workers.log", "ab")  # noqa: SIM115
    setup.procs[0] = subprocess.Popen(
        [str(script), "worker", "start", "-n", processor, "-c", str(concurrency),
         "--path", str(setup.home / "mod"), *(["--celery-events"] if events else [])],
        env=setup.env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


@contextmanager
def listening(sides: Sides) -> Iterator[list[int]]:
    """Celery's EventReceiver consuming every event of the session; yields [count]."""
    from shellflow.engine.transport.celery_app import make_app

    app = make_app(sides.settings)
    seen = [0]

    def count(_: Any) -> None:
        seen[0] += 1

    ready = threading.Event()
    connection = app.connection_for_read()
    receiver = app.events.Receiver(connection, handlers={"*": count})
    receiver.on_consume_ready = lambda *a, **k: ready.set()
    thread = threading.Thread(target=receiver.capture, kwargs={"wakeup": False}, daemon=True)
    thread.start()
    ready.wait(60)
    try:
        yield seen
    finally:
        receiver.should_stop = True
        thread.join(30)
        connection.release()


def run(kind: str, args: argparse.Namespace) -> dict[str, float]:
    with deployment(kind, args.concurrency) as setup:
        processor = setup.socket.replace("sfbench.echo.", "sfbench.p.")
        sides = Sides(setup)
        sides.ready()
        samples: dict[str, list[float]] = {"off": [], "on": []}
        with listening(sides) if args.listen else nullcontext([0]) as seen:
            for round_no in range(args.rounds):
                order = ["off", "on"] if round_no % 2 == 0 else ["on", "off"]
                for label in order:
                    swap_worker(setup, processor, args.concurrency, events=label == "on")
                    sides.ready()
                    burst(sides.sf_send, sides.sf_wait, 50)  # warm: connections, imports
                    samples[label].append(burst(sides.sf_send, sides.sf_wait, args.burst))
        result = {k: statistics.median(v) for k, v in samples.items()}
        result["events"] = float(seen[0])
        return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployment", choices=("embedded", "distributed", "both"),
                        default="both")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--burst", type=int, default=1000, help="calls per burst")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--listen", action="store_true", help="consume the events meanwhile")
    args = parser.parse_args(argv)
    kinds = ["embedded", "distributed"] if args.deployment == "both" else [args.deployment]
    for kind in kinds:
        try:
            r = run(kind, args)
        except Exception as exc:  # a measurement must never fail a pipeline
            print(f"== {kind}: not measured: {type(exc).__name__}: {exc}", flush=True)
            continue
        listened = f", {int(r['events'])} events consumed" if args.listen else ""
        print(f"== {kind}: -c {args.concurrency}, median of {args.rounds} bursts of "
              f"{args.burst}{listened}\n"
              f"without events {r['off']:8.0f} calls/s\n"
              f"with events    {r['on']:8.0f} calls/s\n"
              f"ratio          {r['on'] / r['off']:8.2f}x", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
