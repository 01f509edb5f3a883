"""Each bad input of a call gets its exit code and one clear line on stderr, no traceback.

Invalid JSON with --json (2), an unknown socket (3), a socket whose processor is stopped
with --timeout (7), an unreachable broker (6); on both deployments.
"""

from __future__ import annotations

import subprocess

from tests.conftest import Result
from tests.engine.conftest import Deployment
from tests.engine.test_pipelines import _bash


def _one_line(done: subprocess.CompletedProcess[str] | Result, code: int, words: str) -> None:
    lines = done.stderr.strip().splitlines()
    got = done.returncode if isinstance(done, subprocess.CompletedProcess) else done.code
    assert got == code, done.stderr
    assert len(lines) == 1 and lines[0].startswith("flow: "), done.stderr
    assert words in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_invalid_json_record(deployment: Deployment, network: dict[str, str]) -> None:
    d, n = deployment, network
    done = _bash(d, f"printf 'nope\\n1\\n' | $FLOW task run --stream --json -s {n['do_this']}")
    _one_line(done, 2, "record 1: not JSON")
    assert done.stdout == ""


def test_unknown_socket(deployment: Deployment, network: dict[str, str]) -> None:
    d, n = deployment, network
    _one_line(d.run("task", "run", "-s", n["do_this"] + "x", "--data", "1"), 3, "no socket")
    streamed = _bash(d, f"seq 3 | $FLOW task run --stream -s {n['do_this']}x")
    _one_line(streamed, 3, "no socket")


def test_stopped_processor_times_out(deployment: Deployment, network: dict[str, str]) -> None:
    d, n = deployment, network  # no worker serves the processor
    done = d.run("task", "run", "-s", n["do_this"], "--data", "1", "--timeout", "1")
    _one_line(done, 7, "did not finish within 1 s")
    streamed = _bash(d, f"seq 2 | $FLOW task run --stream --timeout 1 -s {n['do_this']}")
    assert streamed.returncode == 7, streamed.stderr
    assert "Traceback" not in streamed.stderr
    assert streamed.stderr.count("timed out after 1 s") == 2


def test_unreachable_broker(deployment: Deployment, network: dict[str, str]) -> None:
    d, n = deployment, network
    nowhere = {"SHELLFLOW_BROKER": "redis://127.0.0.1:9/0"}  # the discard port: refused
    if d.kind == "distributed":
        nowhere = {"SHELLFLOW_BROKER": "amqp://guest:guest@127.0.0.1:9//"}
    done = d.run("task", "run", "-s", n["do_this"], "--data", "1", env=nowhere)
    _one_line(done, 6, "broker unavailable")
    streamed = _bash(d, f"SHELLFLOW_BROKER={nowhere['SHELLFLOW_BROKER']} seq 2 | "
                        f"SHELLFLOW_BROKER={nowhere['SHELLFLOW_BROKER']} "
                        f"$FLOW task run --stream -s {n['do_this']}")  # fmt: skip
    _one_line(streamed, 6, "broker unavailable")
