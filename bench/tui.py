"""The dashboard at scale: time to the first painted page of calls, and memory, vs history size.

Fills SQLite databases with 10,000 and 100,000 calls, then starts the dashboard headless
(80x24) in a fresh interpreter per run and measures, from the interpreter's start (Textual's
import included) to the first page of calls on screen. It then moves through 20 pages and
reads the process's peak memory. Memory must not grow with the number of calls (the screen
holds one keyset page), and the first paint must take under 1 s at 100,000 calls.

Prints a table and PASS/MISS per target; it reports and always exits 0.

    python bench/tui.py [--rounds 3] [--sizes 10000,100000]
"""

from __future__ import annotations

import time

START = time.perf_counter()  # the child's clock starts before any heavy import

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

FIRST_PAINT_TARGET = 1.0  # seconds, at the largest size
MEMORY_GROWTH_TARGET = 1.10  # peak memory at the largest size / at the smallest
PAGES = 20


def fill(url: str, count: int) -> None:
    """``count`` finished calls, one a second, on 8 sockets and 4 nodes."""
    from sqlalchemy import insert

    from shellflow.model import schema
    from shellflow.model.calls import Call
    from shellflow.model.db import session_scope

    schema.upgrade(url)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    batch = 20_000
    with session_scope(url) as session:
        for first in range(0, count, batch):
            rows = [
                {
                    "id": f"{n:08d}-0000-4000-8000-000000000000",
                    "name": f"bench.socket{n % 8}",
                    "state": "failed" if n % 97 == 0 else "finished",
                    "hostname": f"node{n % 4}",
                    "started": t0 + timedelta(seconds=n),
                    "finished": t0 + timedelta(seconds=n, milliseconds=n % 900),
                    "args": json.dumps({"args": [n], "kwargs": {}}),
                    "lastupdated": t0,
                    "created": t0,
                }
                for n in range(first, min(first + batch, count))
            ]
            session.execute(insert(Call), rows)


def child(url: str) -> None:
    """One measured run: first paint, then ``PAGES`` pages, then peak memory (JSON out)."""
    import asyncio
    import resource

    from shellflow.config import load_settings
    from shellflow.tui.app import make_app

    async def run() -> dict[str, float]:
        app = make_app(load_settings({"db": url}), refresh_seconds=0, depths=False)
        async with app.run_test(size=(80, 24)) as pilot:
            while getattr(app.screen, "page", None) is None:
                await asyncio.sleep(0.005)
            await pilot.pause()
            first_paint = time.perf_counter() - START
            for _ in range(PAGES):
                before = app.screen.page
                await pilot.press("right_square_bracket")
                while app.screen.page is before:
                    await asyncio.sleep(0.005)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            return {"first_paint": first_paint, "rss_mb": rss}

    print(json.dumps(asyncio.run(run())))


def measure(url: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--child", url], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"tui bench: the dashboard failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(options.child)
        return
    sizes = [int(s) for s in options.sizes.split(",")]
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sf-bench-tui-") as folder:
        urls = {}
        for size in sizes:
            urls[size] = f"sqlite:///{Path(folder) / f'calls{size}.db'}"
            started = time.perf_counter()
            fill(urls[size], size)
            print(
                f"filled {size:,} calls in {time.perf_counter() - started:.1f} s", file=sys.stderr
            )
        runs: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
        for _ in range(options.rounds):  # interleaved, so a slow moment hits every size alike
            for size in sizes:
                runs[size].append(measure(urls[size]))
        for size in sizes:
            results[size] = {
                key: statistics.median(run[key] for run in runs[size])
                for key in ("first_paint", "rss_mb")
            }
    print(f"{'calls':>9}  {'first paint':>11}  {'peak memory':>11}  (median of {options.rounds}; "
          f"{PAGES} pages scrolled)")  # fmt: skip
    for size in sizes:
        r = results[size]
        print(f"{size:>9,}  {r['first_paint']:>9.3f} s  {r['rss_mb']:>8.1f} MB")
    small, large = results[sizes[0]], results[sizes[-1]]
    paint_ok = large["first_paint"] < FIRST_PAINT_TARGET
    growth = large["rss_mb"] / small["rss_mb"]
    print(f"first paint at {sizes[-1]:,} calls < {FIRST_PAINT_TARGET:g} s: "
          f"{'PASS' if paint_ok else 'MISS'} ({large['first_paint']:.3f} s)")  # fmt: skip
    print(f"memory {sizes[-1]:,} / {sizes[0]:,} calls <= {MEMORY_GROWTH_TARGET:g}: "
          f"{'PASS' if growth <= MEMORY_GROWTH_TARGET else 'MISS'} ({growth:.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
