"""What counting a call for the live metrics costs the worker, per call.

Times a trivial function called directly and through ``Meter.timed`` (the wrapper every
socket's task runs in: two counter writes, two clock reads, one ring entry, in shared
memory), over several rounds, and prints the medians in nanoseconds per call and their
difference. The figure to compare with is a call's whole cost in the worker (hundreds of
microseconds: ``bench/stream.py``, whose ratio is the end-to-end check). It exits 0; it is a
measurement, not a test.

    python bench/metrics.py [--calls 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from shellflow.engine.worker.metrics import Meter


def per_call(function: object, calls: int) -> float:
    """Nanoseconds per call of ``function()``."""
    call = function  # a local: the loop is the same for both sides
    start = time.perf_counter_ns()
    for _ in range(calls):
        call()  # type: ignore[operator]
    return (time.perf_counter_ns() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    def nothing() -> None:
        return None

    meter = Meter(sockets=8, slots=5)
    counted = meter.timed(3, nothing)
    direct, timed = [], []
    for _ in range(args.rounds):
        direct.append(per_call(nothing, args.calls))
        timed.append(per_call(counted, args.calls))
    d, t = statistics.median(direct), statistics.median(timed)
    print(f"direct call:          {d:8.0f} ns")
    print(f"counted (Meter.timed): {t:8.0f} ns")
    print(f"overhead per call:    {t - d:8.0f} ns")
    print(f"counted calls: {meter.snapshot(3, time.monotonic())[0][0]}")


if __name__ == "__main__":
    main()
