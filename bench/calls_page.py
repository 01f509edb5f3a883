"""``flow ls calls`` with a million calls on PostgreSQL: how long the first page takes.

Creates a scratch database (dropped at the end unless ``--keep``), builds the schema with
the migrations, adds a small network (one queue, one processor, eight sockets) and fills it
with ``--calls`` call rows and two events per call, in SQL (``generate_series``) so a million
rows take seconds, not minutes. The rows look like a busy month: calls spread over 30 days
in the order they were made, eight sockets of uneven popularity, mostly finished, some
failed, revoked or retried, a few still pending or running (the newest ones), three calls
per flow run, each call's parent the previous call of its run.

Then it times, as medians over ``--rounds`` runs:

- in-process, the query behind the command (``shellflow.model.history.list_calls`` on one
  light read connection): the first page, ``--state failed``, ``--socket NAME``,
  ``--unfinished``, and page 1000;
- the command itself in a subprocess (``flow ls calls ...``), start-up included; the first
  page also with shellflow's modules compiled to bytecode beforehand (a scratch copy of
  the package, compiled, first on ``PYTHONPATH``), as an installed package has them: a
  checkout run with ``PYTHONDONTWRITEBYTECODE=1`` compiles every module it imports on each
  start.

Target: the whole first-page command under 100 ms. It prints a table and PASS/MISS for the
target and exits 0: a measurement, not a test.

    python bench/calls_page.py [--calls 1000000] [--rounds 7] [--keep NAME] [--reuse NAME]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PG = "postgresql://postgres@127.0.0.1:5432"
TARGET_MS = 100.0
SOCKETS = [f"pyfi.processors.sample.{name}" for name in (
    "do_this", "do_something", "add_two", "double", "shout", "split", "join", "sleepy",
)]  # fmt: skip
# How often each socket is called, cumulative over [0, 1): the first ones are the busiest.
WEIGHTS = [0.35, 0.60, 0.75, 0.85, 0.91, 0.95, 0.98, 1.0]

FILL_CALLS = """
INSERT INTO call (id, created, name, owner, state, socket_id, task_id, parent, taskparent,
                  tracking, celeryid, resultid, args, result, error, hostname, worker,
                  started, finished, lastupdated)
SELECT md5(g::text)::uuid::text, t.started, s.name, 'bench', t.state, s.id, s.task_id,
       CASE WHEN g % 3 <> 1 THEN md5((g - 1)::text)::uuid::text END, NULL,
       md5('flow' || (g / 3)::text)::uuid::text, md5('celery' || g::text), NULL,
       '[' || g || ']',
       CASE WHEN t.state = 'finished' THEN '"' || g || '"' END,
       CASE WHEN t.state = 'failed' THEN 'ValueError: bad input ' || g END,
       'node' || (g % 4), 'proc1@node' || (g % 4),
       t.started,
       CASE WHEN t.state IN ('finished', 'failed', 'revoked')
            THEN t.started + (random() * 5) * interval '1 second' END,
       t.started
FROM generate_series(1, :n) AS g
CROSS JOIN LATERAL (
    SELECT now() - (:n - g) * (interval '30 days' / :n) AS started,
           CASE WHEN g > :n - 200 THEN (ARRAY['pending', 'received', 'running'])[1 + g % 3]
                WHEN r < 0.92 THEN 'finished' WHEN r < 0.97 THEN 'failed'
                WHEN r < 0.99 THEN 'revoked' WHEN r < 0.995 THEN 'retry'
                ELSE 'finished' END AS state,
           pick
    FROM (SELECT random() AS r, random() + g * 0 AS pick) AS dice
) AS t
JOIN bench_socket s ON t.pick >= s.low AND t.pick < s.high
"""

FILL_EVENTS = """
INSERT INTO event (id, created, name, note, owner, call_id)
SELECT md5(c.id || e.name)::uuid::text, c.started + e.after, e.name, NULL, 'bench', c.id
FROM call c
CROSS JOIN LATERAL (VALUES
    ('received', interval '0'),
    (CASE c.state WHEN 'finished' THEN 'postrun' WHEN 'failed' THEN 'failure'
                  WHEN 'revoked' THEN 'revoked' WHEN 'retry' THEN 'retry' ELSE 'prerun' END,
     interval '1 millisecond')
) AS e(name, after)
"""


def admin() -> Any:
    import psycopg2

    conn = psycopg2.connect(f"{PG}/postgres", connect_timeout=5)
    conn.autocommit = True
    return conn


@contextmanager
def scratch_database(keep: str | None, reuse: str | None) -> Iterator[tuple[str, bool]]:
    """A database URL, and whether it still needs filling."""
    if reuse:
        yield f"{PG}/{reuse}", False
        return
    name = keep or f"sf_bench_calls_{uuid.uuid4().hex[:8]}"
    conn = admin()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG}/{name}", True
    finally:
        if not keep:
            from shellflow.model.db import dispose_engines

            dispose_engines()
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def fill(url: str, calls: int) -> None:
    import psycopg2

    from shellflow.model import schema
    from shellflow.model.db import session_scope
    from shellflow.model.store import Store

    started = time.perf_counter()
    schema.upgrade(url)
    with session_scope(url) as session:
        store = Store(session, "bench")
        store.add("queue", {"name": "pyfi.queue1"})
        store.add("processor", {"name": "proc1", "gitrepo": "/nowhere", "module": "pyfi.sample"})
        for name in SOCKETS:
            function = name.rsplit(".", 1)[1]
            store.add(
                "socket",
                {"name": name, "queue": "pyfi.queue1", "processor": "proc1", "task": function},
            )
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE bench_socket (name text, low float, high float)")
        low = 0.0
        for name, high in zip(SOCKETS, WEIGHTS, strict=True):
            cur.execute("INSERT INTO bench_socket VALUES (%s, %s, %s)", (name, low, high))
            low = high
        cur.execute(
            "CREATE TEMP TABLE bench_sockets AS SELECT b.name, b.low, b.high, s.id, s.task_id"
            " FROM bench_socket b JOIN socket s ON s.name = b.name"
        )
        cur.execute("DROP TABLE bench_socket")
        cur.execute("ALTER TABLE bench_sockets RENAME TO bench_socket")
        cur.execute(FILL_CALLS.replace(":n", str(int(calls))))
        cur.execute(FILL_EVENTS)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE call")
        cur.execute("VACUUM ANALYZE event")
        cur.execute("SELECT count(*) FROM call")
        (rows,) = cur.fetchone()
        cur.execute("SELECT count(*) FROM event")
        (events,) = cur.fetchone()
    conn.close()
    took = time.perf_counter() - started
    print(f"filled {rows:,} calls and {events:,} events in {took:.1f} s", file=sys.stderr)


CASES: list[tuple[str, list[str], dict[str, Any]]] = [
    ("first page", [], {}),
    ("--state failed", ["--state", "failed"], {"state": "failed"}),
    ("--socket (3rd busiest)", ["--socket", SOCKETS[2]], {"socket": SOCKETS[2]}),
    ("--socket (rarest)", ["--socket", SOCKETS[-1]], {"socket": SOCKETS[-1]}),
    ("--unfinished", ["--unfinished"], {"unfinished": True}),
    ("page 1000", ["-p", "1000"], {"page": 1000}),
]


def median_ms(action: Callable[[], object], rounds: int) -> float:
    action()  # warm the caches once, as a user's second look would
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def flow_script() -> str:
    script = Path(sys.executable).with_name("flow")
    return str(script) if script.exists() else "flow"


def compiled_env(env: dict[str, str], scratch: Path) -> dict[str, str]:
    """``env`` that imports a copy of shellflow compiled to bytecode in ``scratch`` (the
    checkout is left as it is)."""
    import shutil

    import shellflow

    copy = scratch / "shellflow"
    shutil.copytree(Path(shellflow.__file__).parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(copy)], check=True,
                   capture_output=True)  # fmt: skip
    return {**env, "PYTHONPATH": str(scratch)}


def measure(url: str, rounds: int) -> list[tuple[str, float, float, str]]:
    import tempfile

    from shellflow.model.history import list_calls
    from shellflow.model.listing import reader

    env = {**os.environ, "SHELLFLOW_DB": url, "NO_COLOR": "1"}
    results = []
    with tempfile.TemporaryDirectory(prefix="sfpyc") as prefix:
        compiled = compiled_env(env, Path(prefix))

        def first_page() -> object:
            return subprocess.run([flow_script(), "ls", "calls"], env=compiled,
                                  capture_output=True, text=True, check=True)  # fmt: skip

        bytecode = median_ms(first_page, rounds)
    with reader(url) as conn:
        for label, argv, kwargs in CASES:
            footer = ""

            def query(kwargs: dict[str, Any] = kwargs) -> object:
                return list_calls(conn, **kwargs)

            in_process = median_ms(query, rounds)

            def command(argv: list[str] = argv) -> object:
                nonlocal footer
                done = subprocess.run(
                    [flow_script(), "ls", "calls", *argv],
                    env=env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                footer = done.stderr.strip().splitlines()[-1]
                return done

            in_subprocess = median_ms(command, rounds)
            results.append((label, in_process, in_subprocess, footer))
    results.insert(1, ("first page, bytecode", results[0][1], bytecode, "(compiled beforehand)"))
    return results


def python_start_ms(rounds: int) -> float:
    return median_ms(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--keep", metavar="NAME", help="Create database NAME and keep it")
    parser.add_argument("--reuse", metavar="NAME", help="Measure database NAME as it is")
    args = parser.parse_args()
    with scratch_database(args.keep, args.reuse) as (url, empty):
        if empty:
            fill(url, args.calls)
        if args.reuse:
            from shellflow.model import schema

            schema.upgrade(url)  # a kept database gets this checkout's indexes
            conn = __import__("psycopg2").connect(url)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("ANALYZE call")
            conn.close()
        results = measure(url, args.rounds)
        bare = python_start_ms(args.rounds)
    print(f"{'case':<24} {'query ms':>9} {'flow ms':>9}  footer")
    for label, in_process, in_subprocess, footer in results:
        print(f"{label:<24} {in_process:>9.1f} {in_subprocess:>9.1f}  {footer}")
    print(f"{'(python -c pass)':<24} {'':>9} {bare:>9.1f}")
    query, command, compiled = results[0][1], results[0][2], results[1][2]
    verdict = "PASS" if command < TARGET_MS else "MISS"
    print(f"{verdict}: first page command {command:.1f} ms (query {query:.1f} ms, with"
          f" bytecode {compiled:.1f} ms; target < {TARGET_MS:.0f} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
