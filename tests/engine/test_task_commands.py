"""`flow task result` and `flow task cancel`, on both deployments.

A cancelled call must stay cancelled whether its processor's worker is running (the revoke
broadcast reaches it) or down (the worker that starts later loads it from the records).
A call sent with ``--async`` is recorded ``pending`` until a worker takes it.
"""

from __future__ import annotations

import json

from tests.engine.conftest import ROOT, Deployment


def _async(d: Deployment, socket: str, *args: str) -> str:
    call_id = d.ok("task", "run", "-s", socket, "--async", *args).stdout.strip()
    assert len(call_id) == 36
    return call_id


def test_result_of_finished_failed_and_unknown_calls(
    deployment: Deployment, network: dict[str, str]
) -> None:
    d, n = deployment, network
    d.start_worker(n["processor"], concurrency=1)
    call = _async(d, n["add_two"], "one:=1", "two:=2")
    assert d.ok("task", "result", call, "--wait", "--timeout", "60").stdout == "3\n"
    d.wait_for("SELECT state FROM call WHERE id = ?", (call,), [("finished",)])
    assert d.ok("task", "result", call).stdout == "3\n"  # from the call's record
    text = _async(d, n["do_this"], "--data", '"hi"')
    assert d.ok("task", "result", text, "--wait").stdout == "Do this: hi\n"  # strings raw

    failing = _async(d, n["add_two"], "one:=1", "two=x")
    done = d.run("task", "result", failing, "--wait", "--timeout", "60")
    assert done.code == 1
    assert done.stdout == "" and "TypeError" in done.stderr
    assert len(done.stderr.splitlines()) == 1

    unknown = d.run("task", "result", "00000000-0000-4000-8000-000000000000")
    assert unknown.code == 3 and len(unknown.stderr.splitlines()) == 1, unknown.stderr


def test_an_async_call_is_pending_until_a_worker_takes_it(
    deployment: Deployment, network: dict[str, str]
) -> None:
    d, n = deployment, network  # no worker serves the processor yet
    call = _async(d, n["do_this"], "--data", '"later"', "--flow", "f" * 8)
    row = "SELECT state, name, started, tracking, args, created FROM call WHERE id = ?"
    ((state, name, started, flow, args, created),) = d.query(row, (call,))
    assert (state, name, started, flow) == ("pending", n["do_this"], None, "f" * 8)
    assert json.loads(args) == {"args": ["later"], "kwargs": {}}

    waiting = d.run("task", "result", call)
    assert waiting.code == 7 and waiting.stdout == "", waiting.stderr
    assert len(waiting.stderr.splitlines()) == 1 and "pending" in waiting.stderr
    listed = [json.loads(line) for line in d.ok("ls", "calls", "-u", "--json").stdout.splitlines()]
    assert [(c["id"], c["state"]) for c in listed] == [(call, "pending")]
    shown = json.loads(d.ok("ls", "call", "--id", call, "--json").stdout)
    assert shown["state"] == "pending" and shown["events"] == []  # nothing has happened yet

    d.start_worker(n["processor"], concurrency=1)
    assert d.ok("task", "result", call, "--wait", "--timeout", "60").stdout == "Do this: later\n"
    d.wait_for("SELECT state FROM call WHERE id = ?", (call,), [("finished",)])
    # The worker's record completed the same row: one row, sent time kept, now started.
    ((state, name, started, flow, _, kept),) = d.query(row, (call,))
    assert (state, name, flow, kept) == ("finished", n["do_this"], "f" * 8, created)
    assert started is not None
    assert d.ok("task", "result", call).stdout == "Do this: later\n"


def test_cancel_a_call_queued_while_its_processor_is_down(
    deployment: Deployment, network: dict[str, str]
) -> None:
    d, n = deployment, network
    call = _async(d, n["do_this"], "--data", '"never"')
    assert d.query("SELECT state FROM call WHERE id = ?", (call,)) == [("pending",)]
    waiting = d.run("task", "result", call, "--wait", "--timeout", "1")
    assert waiting.code == 7, waiting.stderr  # timed out: nothing serves it yet
    done = d.run("task", "cancel", call)
    assert done.code == 0, done.stderr
    assert "cancelled" in done.stderr
    assert d.run("task", "cancel", call).code == 0  # already cancelled: still fine
    result = d.run("task", "result", call)
    assert result.code == 1 and "cancelled" in result.stderr

    d.start_worker(n["processor"], concurrency=1)
    later = _async(d, n["do_this"], "--data", '"later"')
    # The queue is first in, first out: once the later call ran, the cancelled one was seen.
    assert d.ok("task", "result", later, "--wait", "--timeout", "60").stdout == "Do this: later\n"
    events = d.wait_for(
        "SELECT count(*) FROM event WHERE call_id = ? AND name = 'revoked'", (call,), [(2,)]
    )
    assert events == [(2,)]  # cancelled by the user, then discarded by the worker
    assert d.query("SELECT state, name, started FROM call WHERE id = ?", (call,)) == [
        ("revoked", n["do_this"], None)  # the pending row, now cancelled
    ]
    assert d.run("task", "result", call).code == 1

    finished = d.run("task", "cancel", later)
    assert finished.code == 4 and "already" in finished.stderr
    assert d.run("task", "cancel", "not-an-id").code == 2


def _slow_socket(d: Deployment) -> str:
    """A socket whose calls sleep as long as they are told, served by one pool process."""
    queue, proc = d.name("chaosq"), d.name("chaos")
    slow = d.name("chaos.slow")
    d.setup("add", "queue", "-n", queue, "-t", "direct")
    d.setup("add", "processor", "-n", proc, "-g", str(ROOT), "-mp", "examples/processors",
         "-m", "pyfi.processors.chaos", "-h", "localhost", "-c", "1")  # fmt: skip
    d.setup("add", "socket", "-n", slow, "-q", queue, "-pn", proc, "-t", "slow")
    d.broker_queues.append(slow)
    d.broker_exchanges.append(queue)
    d.start_worker(proc, concurrency=1)
    return slow


def test_cancel_reaches_a_running_worker(deployment: Deployment) -> None:
    """A call queued behind a slow one is discarded by the live worker it was queued for."""
    d = deployment
    slow = _slow_socket(d)
    assert d.ok("task", "run", "-s", slow, "--data", "0", "--timeout", "60").stdout == "0\n"

    # Long enough to still be running after the next few commands on a slow, shared machine.
    first = _async(d, slow, "--data", "1", "seconds:=10")
    d.wait_for("SELECT state FROM call WHERE id = ?", (first,), [("running",)])
    queued = _async(d, slow, "--data", "2")
    assert d.run("task", "cancel", queued).code == 0
    busy = d.run("task", "cancel", first)
    assert busy.code == 4 and "started" in busy.stderr

    assert d.ok("task", "result", first, "--wait", "--timeout", "60").stdout == "1\n"
    after = _async(d, slow, "--data", "3")
    assert d.ok("task", "result", after, "--wait", "--timeout", "60").stdout == "3\n"
    assert d.wait_for(
        "SELECT count(*) FROM event WHERE call_id = ? AND name = 'revoked'", (queued,), [(2,)]
    ) == [(2,)]
    assert d.query("SELECT state FROM call WHERE id = ?", (queued,)) == [("revoked",)]


def test_terminate_stops_a_running_call(deployment: Deployment) -> None:
    """--terminate stops a call mid-run: recorded 'revoked', not run again, worker serves on."""
    d = deployment
    slow = _slow_socket(d)

    long = _async(d, slow, "--data", "1", "seconds:=600")
    d.wait_for("SELECT state FROM call WHERE id = ?", (long,), [("running",)])
    refused = d.run("task", "cancel", long)  # without --terminate: today's refusal
    assert refused.code == 4 and "--terminate" in refused.stderr, refused.stderr
    stopped = d.run("task", "cancel", long, "--terminate")
    assert stopped.code == 0, stopped.stderr
    d.wait_for("SELECT state FROM call WHERE id = ?", (long,), [("revoked",)])
    notes = d.query("SELECT note FROM event WHERE call_id = ? AND name = 'revoked'", (long,))
    assert len(notes) == 1 and notes[0][0].startswith("Stopped while running"), notes
    result = d.run("task", "result", long, "--wait", "--timeout", "60")
    assert result.code == 1 and "cancelled" in result.stderr, result.stderr

    # The worker goes on serving (a fresh pool process), and the stopped call is not redone.
    after = _async(d, slow, "--data", "2")
    assert d.ok("task", "result", after, "--wait", "--timeout", "120").stdout == "2\n"
    assert d.query("SELECT state FROM call WHERE id = ?", (long,)) == [("revoked",)]
    done = d.run("task", "cancel", after, "--terminate")
    assert done.code == 4 and "already finished" in done.stderr, done.stderr
