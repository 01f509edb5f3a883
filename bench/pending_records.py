"""What recording a stream's calls ``pending`` costs (``shellflow.client.stream_records``).

Hands N calls to a :class:`PendingRecorder` as fast as a sender could, and reports the
sender's time per call (the hand-over: what the stream's sending path pays) and the time
until every row is committed (the recorder's thread, off that path), on a fresh SQLite
database and, when given, a PostgreSQL one (``--pg URL`` of an empty database it may
initialise). A measurement, not a test: it exits 0.

    python bench/pending_records.py [--calls 10000] [--pg postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shellflow.client.stream_records import PendingRecorder
from shellflow.model.routes import SocketRoute

ROUTE = SocketRoute(name="bench.echo", processor="bench", module="m", function="f", queue="q",
                    qtype="direct", durable=True, processor_status="ready",
                    requested_status="ready", socket_id="none", task_id="none")  # fmt: skip


def measure(url: str, calls: int) -> tuple[float, float]:
    recorder = PendingRecorder(url, ROUTE, lambda line: print(line, file=sys.stderr))
    recorder.start()
    start = time.perf_counter()
    for i in range(calls):
        recorder.add(f"{i:08d}-0000-4000-8000-000000000000", [i], {}, "flow", None, bool)
    handed = time.perf_counter() - start
    recorder.close(60)
    total = time.perf_counter() - start
    assert recorder.recorded == calls, recorder.recorded
    return handed / calls * 1e6, total


def init(url: str) -> None:
    flow = Path(sys.executable).with_name("flow")
    env = {**os.environ, "SHELLFLOW_DB": url, "SHELLFLOW_HOME": tempfile.mkdtemp()}
    subprocess.run([str(flow), "db", "init"], env=env, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--pg", help="an empty PostgreSQL database's URL")
    args = parser.parse_args()
    urls = [f"sqlite:///{tempfile.mkdtemp()}/bench.db"] + ([args.pg] if args.pg else [])
    for url in urls:
        init(url)
        per_call, total = measure(url, args.calls)
        print(f"{url.split(':')[0]:<10} {args.calls} calls: hand-over {per_call:.1f} us/call"
              f" on the sending path; all committed after {total:.2f} s"
              f" ({args.calls / total:.0f} rows/s)")  # fmt: skip


if __name__ == "__main__":
    main()
