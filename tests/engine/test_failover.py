"""Failover while calls stream: the node running a processor is cut off (its agent and
workers frozen with SIGSTOP, which issue 19 allows as a stand-in for a cut link), the
placement moves the processor to a surviving node, and the frozen node, woken, stops its
stale worker instead of competing (shellflow.engine.fleet.lease).

Three agents of this machine as nodes (see tests/engine/test_fleet.py) against the shared
PostgreSQL + RabbitMQ + Redis. 1,000 calls are streamed through ``flow task run --stream``:
the first 300 before and during the cut, the other 700 only once the frozen node is woken,
so a stale worker that kept consuming would take some of them. Every result comes back, in
order, and each call has one record in a final state. The call the frozen worker held is
delivered again once RabbitMQ gives up the frozen connection (its heartbeat: docs/engine.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

from tests.engine.agents import wait_status
from tests.engine.fleet import (
    Fleet,
    check_each_call_once,
    group_gone,
    lines,
    stale_runs,
    stream_in_two_parts,
)
from tests.engine.repos import new_repo
from tests.waiting import poll

CALLS, FIRST = 1000, 300
# The function notes which worker ran it: its pool process's parent, the worker's main process.
SLOW = """import os
import time

SERVED = {served!r}


def echo(number):
    time.sleep(0.02)
    with open(SERVED, "a") as notes:
        notes.write(f"{{number}} {{os.getppid()}}\\n")
    return number
"""


def test_a_frozen_node_loses_its_processor_and_stops_its_stale_worker(
    fleet: Fleet, tmp_path: Path
) -> None:
    d = fleet.d
    proc, queue, socket = d.name("failproc"), d.name("failq"), d.name("fail.echo")
    served = tmp_path / "served.txt"
    repo = new_repo(tmp_path / "repo", {"slow_echo.py": SLOW.format(served=str(served))})
    d.setup("add", "queue", "-n", queue, "-t", "direct")
    d.setup("add", "processor", "-n", proc, "-g", str(repo), "-m", "slow_echo", "-c", "1")
    d.setup("add", "socket", "-n", socket, "-q", queue, "-pn", proc, "-t", "echo")
    d.broker_queues.append(socket)
    d.broker_exchanges.append(queue)
    for node in ("n1", "n2", "n3"):
        fleet.start(node)
    wait_status(d, proc, "running", timeout=180)
    [first] = fleet.placed_on()
    [(old_worker, old_pid)] = fleet.workers().items()

    out = tmp_path / "results.txt"
    resumed = threading.Event()
    stream = stream_in_two_parts(
        d, socket, out, tmp_path / "stream.err", FIRST, CALLS, resumed
    )  # the last calls only once the node is back: for a stale worker to compete for
    frozen: list[tuple[int, bool]] = []  # (pid, a whole process group)
    try:
        # Cut the node off mid-stream: its agent and its worker (with its pool) freeze.
        poll(lambda: len(lines(out)) >= 50, 300, "the stream to be under way")
        agent = fleet.agents[first]
        os.kill(agent.pid, signal.SIGSTOP)
        frozen.append((agent.pid, False))
        os.killpg(old_pid, signal.SIGSTOP)
        frozen.append((old_pid, True))
        at_freeze, seen_at_freeze = time.monotonic(), len(lines(out))

        # The placement moves the processor once the node's heartbeat is 15 s old, and a
        # surviving node's agent deploys it and starts a worker.
        poll(lambda: fleet.placed_on() not in ([first], []), 120, "the processor to move")
        placed = time.monotonic()
        [survivor] = fleet.placed_on()
        poll(lambda: f"{proc}@{survivor}" in fleet.workers(), 300, "a worker on the survivor")
        survivor_up = time.monotonic()
        poll(lambda: len(lines(out)) > seen_at_freeze, 300, "results again")
        serving = time.monotonic()
        # The calls sent before the cut, the one the frozen worker held too (delivered again
        # once RabbitMQ closes the frozen connection), are all answered.
        poll(lambda: len(lines(out)) >= FIRST, 600, f"the first {FIRST} results")
        all_first = time.monotonic()

        # Wake the node: its agent's lease has lapsed, so it stops the stale worker at once;
        # the remaining calls are sent only now, for a stale worker to compete for.
        for pid, group in frozen:
            (os.killpg if group else os.kill)(pid, signal.SIGCONT)
        frozen.clear()
        woken = time.monotonic()
        resumed.set()
        poll(lambda: group_gone(old_pid), 120, "the stale worker to exit")
        stale_gone = time.monotonic()
        assert stream.wait(900) == 0, (tmp_path / "stream.err").read_text()
        done = time.monotonic()
    finally:
        for pid, group in frozen:
            with contextlib.suppress(OSError):
                (os.killpg if group else os.kill)(pid, signal.SIGCONT)
        resumed.set()
        if stream.poll() is None:
            stream.kill()
        stream.wait()

    redelivered = d.query(
        "SELECT count(*) FROM event e JOIN call c ON c.id = e.call_id "
        "WHERE c.name = ? AND e.name = 'redelivered'",
        (socket,),
    )[0][0]
    print(
        f"\nfailover: froze {first} at result {seen_at_freeze}; placed on {survivor} after "
        f"{placed - at_freeze:.1f} s, its worker there up after {survivor_up - at_freeze:.1f} s; "
        f"results again after {serving - at_freeze:.1f} s; first "
        f"{FIRST} results after {all_first - at_freeze:.1f} s; stale worker gone "
        f"{stale_gone - woken:.2f} s after SIGCONT; stream done {done - woken:.1f} s after; "
        f"redelivered events {redelivered}"
    )
    check_each_call_once(d, socket, out, CALLS)
    # The stale worker ran calls before the cut, and none of those sent after it was woken.
    runs, by_stale = stale_runs(served, old_pid, FIRST)
    print(f"runs {len(runs)} ({len(runs) - len({n for n, _ in runs})} of a call run twice); "
          f"by the stale worker {len(by_stale)} (the last {by_stale[-1]})")  # fmt: skip
    assert "lease lost" in fleet.log(first), fleet.log(first)[-3000:]
    assert old_worker == f"{proc}@{first}"
