"""A socket deleted under a running stream (issue 16, point 3), with a real worker.

Without ``--force`` the deletion is refused (exit 4) while the stream runs; with it the
stream ends instead of hanging: one line on stderr for each call revoked, a non-zero exit,
every call it sent recorded in a final state, and nothing left in the socket's queue.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FlowRunner, _flow_executable
from tests.engine.conftest import Deployment, deploy, module_network
from tests.waiting import poll

FINAL = ("finished", "failed", "revoked")


def _queued(d: Deployment, queue: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """Messages waiting in the broker queue (one the broker does not know: 0)."""
    from shellflow.config import load_settings
    from shellflow.engine.transport.purge import waiting

    for key, value in d.env.items():
        monkeypatch.setenv(key, value)
    return waiting(load_settings().broker, [queue])[queue]


@pytest.mark.parametrize("kind", ["embedded", "distributed"])
def test_deleting_a_socket_under_a_stream_refuses_then_revokes(
    kind: str, flow: FlowRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with deploy(kind, flow) as d:
        n = module_network(d, "chaos", ("slow",))
        slow = n["slow"]
        d.start_worker(n["processor"], concurrency=1)
        records = Path(d.env["SHELLFLOW_HOME"]) / "records"
        records.write_text("".join(f"{i}\n" for i in range(1, 201)))
        with records.open() as source:
            stream = subprocess.Popen(
                [*_flow_executable(), "task", "run", "--stream", "-j", "4", "-s", slow,
                 "seconds:=1"],
                stdin=source, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, **d.env},
            )  # fmt: skip
        try:
            running = "SELECT count(*) FROM call WHERE name = ? AND state = 'running'"
            poll(lambda: d.query(running, (slow,))[0][0] >= 1, 60, "a call of the stream running")
            refused = d.run("delete", "socket", "-n", slow)
            assert refused.code == 4, refused.stderr
            assert "pending or running; --force revokes them" in refused.stderr
            forced = d.run("delete", "socket", "-n", slow, "--force")
            assert forced.code == 0, forced.stderr
            assert "Revoked" in forced.stderr, forced.stderr
            out, err = stream.communicate(timeout=120)  # ends: it does not hang
        finally:
            if stream.poll() is None:
                stream.kill()
                stream.wait()
        assert stream.returncode != 0, err
        assert "Traceback" not in err
        # One line for each call the stream had sent and not seen end: revoked by the
        # deletion (with its reason), or cancelled once the stream saw the socket gone.
        lines = [line for line in err.splitlines() if line.startswith("flow: record ")]
        assert lines, err
        reasons = (f"socket {slow} deleted", f"no socket named {slow!r}")
        assert all(any(r in line for r in reasons) for line in lines), err
        numbers = [int(line.split()[2]) for line in lines]
        assert len(numbers) == len(set(numbers)), err
        sent = len(out.splitlines()) + len(lines)
        # A worker's record of a call it had begun may be committed from its spool just
        # after the revocation; its own revoked record follows: wait for the records to settle.
        poll(lambda: all(s in FINAL for _, s in d.query("SELECT id, state FROM call")), 60,
             "every call of the stream to be recorded in a final state")  # fmt: skip
        rows = d.query("SELECT id, state FROM call")
        assert rows and all(state in FINAL for _, state in rows), rows
        assert len(rows) >= sent
        assert _queued(d, slow, monkeypatch) == 0


@pytest.mark.parametrize("force", [False, True])
def test_a_change_that_strands_a_queue_is_refused_while_the_broker_cannot_be_asked(
    force: bool, flow: FlowRunner
) -> None:
    """Nothing changes: unforced, nobody could tell whether calls wait; forced, the calls
    waiting could not be taken out and would run after the change."""
    closed = "amqp://guest:guest@127.0.0.1:9/"  # the discard port: nothing listens
    with deploy("distributed", flow) as d:
        n = module_network(d, "chaos", ("slow",))
        d.env["SHELLFLOW_BROKER"] = closed
        refused = d.run("delete", "socket", "-n", n["slow"], *(["--force"] if force else []))
        assert refused.code == 6, refused.stderr
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
        assert "broker unavailable" in refused.stderr and "nothing changed" in refused.stderr
        assert "guest:guest" not in refused.stderr  # the URL is shown masked
        assert d.query("SELECT count(*) FROM socket WHERE name = ?", (n["slow"],)) == [(1,)]
