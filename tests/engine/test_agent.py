"""The agent end to end, on both deployments: deploy from git, serve, pause, resume, restart,
recover from a crashed worker and from an unclonable repository, and stop cleanly.

Processor repositories are git repositories made by the test (the quick start's processors
copied and committed, or small ones written here); pip never reaches for an index.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.conftest import CliRunnerFlow
from tests.engine.agents import (
    STATUS,
    agent_log,
    pinned_version_repos,
    poll,
    processor,
    running_agent,
    stop_everything,
    wait_status,
    worker_pids,
)
from tests.engine.conftest import Deployment, build_network
from tests.engine.repos import examples_repo

CALL = "SELECT state, result FROM call WHERE id = ?"


def send(d: Deployment, socket: str, data: str) -> str:
    return str(d.ok("task", "run", "-s", socket, "--data", data, "--async").stdout.strip())


def calls_recorded(d: Deployment, ids: list[str]) -> int:
    """How many of the calls ``ids`` a worker has taken (a sent call is ``pending`` until)."""
    marks = ", ".join("?" for _ in ids)
    sql = f"SELECT count(*) FROM call WHERE id IN ({marks}) AND state <> 'pending'"
    return int(d.query(sql, tuple(ids))[0][0])


def test_agent_serves_pauses_resumes_restarts_and_stops(
    deployment: Deployment, tmp_path: Path
) -> None:
    d = deployment
    names = build_network(d)
    proc_name = names["processor"]
    d.ok("update", "processor", "-n", proc_name, "-g", str(examples_repo(tmp_path / "repo")))
    with running_agent(d) as agent:
        out = d.ok("task", "run", "-s", names["do_something"], "--data", '"x"', "--timeout", "90")
        assert out.stdout == "TEXT:x\n", agent_log(d)
        row = wait_status(d, proc_name, "running")
        assert row["status_reason"] is None
        [pid] = worker_pids(d)
        [(host, concurrency)] = d.query("SELECT hostname, concurrency FROM worker")
        assert (host, concurrency) == (os.uname().nodename, 1)

        # Paused: the worker is gone (the status is written once it has exited), so calls
        # sent now cannot run; they wait in their queue.
        paused = d.ok("proc", "pause", "-n", proc_name, "--wait", "--timeout", "90")
        assert f"Processor '{proc_name}': requested paused" in paused.stderr
        assert processor(d, proc_name)["status"] == "paused"
        assert worker_pids(d) == []
        ids = [send(d, names["do_something"], f'"{i}"') for i in range(3)]
        assert calls_recorded(d, ids) == 0
        d.ok("proc", "resume", "-n", proc_name, "--wait", "--timeout", "90")
        for i, call_id in enumerate(ids):
            expect = [("finished", json.dumps(f"TEXT:{i}"))]
            assert d.wait_for(CALL, (call_id,), expect, timeout=90) == expect

        # Restart: a new worker process serves.
        [before] = worker_pids(d)
        d.ok("proc", "restart", "-n", proc_name, "--wait", "--timeout", "90")
        [after] = poll(lambda: worker_pids(d), 30, "a worker after the restart")
        assert after != before
        # A worker that dies is started again (and the calls keep working).
        os.killpg(after, signal.SIGKILL)
        poll(lambda: worker_pids(d) not in ([], [after]), 90, "the crashed worker's successor")
        wait_status(d, proc_name, "running")
        out = d.ok("task", "run", "-s", names["do_this"], "--data", '"y"', "--timeout", "90")
        assert out.stdout == "Do this: y\n"
        assert pid not in worker_pids(d)

        stopped = d.ok("agent", "stop", "--timeout", "90")
        assert "stopped" in stopped.stderr
        assert agent.wait(timeout=30) == 0
    row = processor(d, proc_name)
    assert (row["status"], row["requested_status"]) == ("stopped", "running")
    assert "agent" in row["status_reason"] and "stopped" in row["status_reason"]
    assert d.query("SELECT status, pid FROM agent") == [("stopped", None)]
    assert d.query("SELECT status, process FROM worker") == [("stopped", None)]


def test_an_unclonable_repository_leaves_the_processor_in_error_with_calls_waiting(
    deployment: Deployment, tmp_path: Path
) -> None:
    d = deployment
    names = build_network(d)
    proc_name = names["processor"]
    d.ok("update", "processor", "-n", proc_name, "-g", str(tmp_path / "no-such-repo"))
    with running_agent(d):
        row = wait_status(d, proc_name, "error")
        assert "cannot clone" in row["status_reason"] and "no-such-repo" in row["status_reason"]
        call_id = send(d, names["do_something"], '"waiting"')
        assert calls_recorded(d, [call_id]) == 0  # no worker was ever started
        assert d.query(STATUS, (proc_name,))[0][0] == "error"
        # Pointing the processor at a good repository deploys it at once; the call runs.
        d.ok("update", "processor", "-n", proc_name, "-g", str(examples_repo(tmp_path / "repo")))
        expect = [("finished", '"TEXT:waiting"')]
        assert d.wait_for(CALL, (call_id,), expect, timeout=90) == expect, agent_log(d)
        assert processor(d, proc_name)["status_reason"] is None


def test_processors_pinning_different_versions_run_side_by_side(
    deployment: Deployment, tmp_path: Path
) -> None:
    d = deployment
    first, second = pinned_version_repos(tmp_path)
    queue = d.name("versions")
    d.setup("add", "queue", "-n", queue, "-t", "direct")
    d.broker_exchanges.append(queue)
    sockets = {}
    for label, repo, module, extra in (
        ("first", first, "first_proc", ["-rq", "requirements.txt"]),
        ("second", second, "second_proc", []),
    ):
        name = d.name(label)
        d.setup("add", "processor", "-n", name, "-g", str(repo), "-m", module, "-h", "localhost",
             "-c", "1", *extra)  # fmt: skip
        sockets[label] = d.name(f"{label}.version")
        d.setup("add", "socket", "-n", sockets[label], "-q", queue, "-pn", name, "-t", "version")
        d.broker_queues.append(sockets[label])
    with running_agent(d):
        for label, version in (("first", "1.0"), ("second", "2.0")):
            out = d.ok("task", "run", "-s", sockets[label], "--data", "null", "--timeout", "120")
            assert out.stdout == f"{version}\n", agent_log(d)
        for label in ("first", "second"):
            assert processor(d, d.name(label))["status"] == "running"


def test_detached_agent_status_and_stop(deployment: Deployment) -> None:
    d = deployment
    try:
        started = d.ok("agent", "start", "--detach", env={"PIP_NO_INDEX": "1"})
        assert "running in the background" in started.stderr
        status = json.loads(d.ok("agent", "status", "--json").stdout)
        assert status["running"] is True and status["status"] == "running"
        assert status["hostname"] == os.uname().nodename and status["cpus"] == os.cpu_count()
        again = d.run("agent", "start", "--detach")
        assert again.code == 4 and "already runs" in again.stderr
        stopped = d.ok("agent", "stop", "--timeout", "90")
        assert f"(pid {status['pid']})" in stopped.stderr
        after = d.run("agent", "status", "--json")
        assert after.code == 6 and json.loads(after.stdout)["running"] is False
        assert "No agent runs" in d.ok("agent", "stop").stderr
    finally:
        stop_everything(d)


# -- flow proc, without an agent --------------------------------------------------------------


@pytest.fixture
def proc_db(initialised_db: str, cli: CliRunnerFlow) -> CliRunnerFlow:
    cli.ok("add", "processor", "-n", "p1", "-g", "/nowhere", "-m", "mod")
    return cli


@pytest.mark.parametrize(
    ("action", "requested"),
    [("start", "running"), ("stop", "stopped"), ("pause", "paused"), ("resume", "running"),
     ("remove", "removed")],
)  # fmt: skip
def test_proc_commands_set_the_requested_status(
    proc_db: CliRunnerFlow, action: str, requested: str
) -> None:
    result = proc_db.ok("proc", action, "-n", "p1")
    assert result.stdout == ""
    assert result.stderr == f"Processor 'p1': requested {requested} (was ready)\n"
    row = json.loads(proc_db.ok("ls", "processor", "-n", "p1", "--json").stdout)
    assert (row["requested_status"], row["status"]) == (requested, "ready")


@pytest.mark.parametrize("action", ["start", "stop", "pause", "resume", "restart", "remove"])
def test_proc_commands_on_an_unknown_processor_exit_3(proc_db: CliRunnerFlow, action: str) -> None:
    result = proc_db("proc", action, "-n", "p11")
    assert result.code == 3
    assert "no processor named 'p11'" in result.stderr and "'p1'" in result.stderr


def test_restart_of_a_processor_nobody_runs_asks_it_to_run(proc_db: CliRunnerFlow) -> None:
    result = proc_db.ok("proc", "restart", "-n", "p1")
    assert "restarted" in result.stderr
    row = json.loads(proc_db.ok("ls", "processor", "-n", "p1", "--json").stdout)
    assert row["requested_status"] == "running"


def test_waiting_without_an_agent_times_out(proc_db: CliRunnerFlow) -> None:
    result = proc_db("proc", "start", "-n", "p1", "--wait", "--timeout", "0.3")
    assert result.code == 7
    assert "is ready, not running" in result.stderr


def test_calls_queued_while_the_agent_is_stopped_all_finish_when_it_starts_again(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Stop the agent with calls queued (some sent before, some while it is down): once
    it starts again, every one of them finishes, once."""
    d = deployment
    names = build_network(d)
    d.ok("update", "processor", "-n", names["processor"], "-g",
         str(examples_repo(tmp_path / "repo")))  # fmt: skip
    with running_agent(d) as agent:
        wait_status(d, names["processor"], "running", timeout=180)
        ids = [send(d, names["do_something"], f'"{i}"') for i in range(20)]
        d.ok("agent", "stop", "--timeout", "90")
        assert agent.wait(timeout=90) == 0
    ids += [send(d, names["do_something"], f'"{i}"') for i in range(20, 30)]
    with running_agent(d):
        for i, call_id in enumerate(ids):
            expect = [("finished", json.dumps(f"TEXT:{i}"))]
            assert d.wait_for(CALL, (call_id,), expect, timeout=180) == expect, agent_log(d)
    name = names["do_something"]
    rows = d.query("SELECT count(*), count(DISTINCT id) FROM call WHERE name = ?", (name,))
    assert rows == [(30, 30)]
