"""Real calls with real logins and tokens, on the embedded default and on RabbitMQ + Redis +
PostgreSQL (issue 18, point 5).

Nobody's principal is patched: each persona of :mod:`tests.personas` calls a socket served
by a real worker through ``flow task run`` (with a session from ``flow login
--password-stdin``, and with ``SHELLFLOW_TOKEN``) and through the Python API in a script of
its own (``SHELLFLOW_TOKEN``). The right is ``RUN_TASK``: solo holds only it, the role
``team`` grants it to anna and bert and it is revoked for bert alone, nemo holds nothing.
An allowed call really runs and returns its result; a refused one exits 5 with one line
and is neither sent nor recorded; the audit trail holds the logins and refusals.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.engine.conftest import Deployment, build_network
from tests.personas import (
    ALLOWED,
    ANNA,
    BERT,
    NEMO,
    SOLO,
    USERS,
    add_personas,
    assert_refused,
    in_process,
    login,
    logins,
    refusals,
    tokens,
    trail,
    with_token,
)

SCRIPT = """
import sys

import shellflow
from shellflow.errors import ShellflowError

try:
    print(shellflow.Socket(name=sys.argv[1])(sys.argv[2]).get(timeout=60))
except ShellflowError as exc:
    print(exc.message, file=sys.stderr)
    sys.exit(int(exc.exit_code))
"""


def api_call(
    d: Deployment, token: str, socket: str, value: str
) -> subprocess.CompletedProcess[str]:
    """A Python script calling ``socket`` with ``SHELLFLOW_TOKEN`` in its environment."""
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, socket, value], capture_output=True, text=True,
        timeout=120, env={**os.environ, **with_token(d.env, token)},
    )  # fmt: skip


def test_calls_as_the_owner_and_as_users_with_sessions_and_tokens(
    deployment: Deployment, tmp_path: Path
) -> None:
    d = deployment
    network = build_network(d)
    socket = network["do_something"]
    owner = in_process(d.env)
    add_personas(owner, "RUN_TASK")
    made = tokens(owner)
    d.start_worker(network["processor"])

    def recorded() -> int:
        return int(d.query("SELECT count(*) FROM call WHERE name = ?", (socket,))[0][0])

    assert d.ok("task", "run", "-s", socket, "--data", "owner").stdout == "TEXT:owner\n"
    expected = 1
    for name in USERS:
        session = login(d.flow, d.env, name, tmp_path)
        for how, env in (("session", session), ("token", with_token(d.env, made[name]))):
            value = f"{how} {name}"
            ran = d.flow("task", "run", "-s", socket, "--data", value, env=env)
            if ALLOWED[name]:
                assert (ran.code, ran.stdout) == (0, f"TEXT:{value}\n"), ran.stderr
                expected += 1
            else:
                assert_refused(ran, name, "RUN_TASK", socket)
            d.wait_rows("SELECT id FROM call WHERE name = ?", (socket,), expected)
            assert recorded() == expected  # a refused call was never sent nor recorded

        called = api_call(d, made[name], socket, f"api {name}")
        if ALLOWED[name]:
            assert (called.returncode, called.stdout) == (0, f"TEXT:api {name}\n"), called.stderr
            expected += 1
        else:
            assert called.returncode == 5, called.stderr
            assert called.stderr == f"{name} lacks the RUN_TASK right on {socket}\n"
        d.wait_rows("SELECT id FROM call WHERE name = ?", (socket,), expected)
        assert recorded() == expected

    finished = d.query("SELECT args FROM call WHERE name = ? AND state = 'finished'", (socket,))
    said = "".join(str(row[0]) for row in finished)
    for name in (SOLO, ANNA):
        assert all(f"{how} {name}" in said for how in ("session", "token", "api"))
    assert not any(f"{how} {name}" in said for name in (BERT, NEMO)
                   for how in ("session", "token", "api"))  # fmt: skip

    rows = trail(d.flow, d.env)
    assert logins(rows) >= set(USERS)
    refused = [r for r in rows if r["action"] == "refused"]
    assert {(BERT, "RUN_TASK", socket), (NEMO, "RUN_TASK", socket)} == refusals(rows)
    assert {r["where"].split()[0] for r in refused} == {"cli", "api"}
    assert len(refused) == 6  # bert and nemo: a session, a token and a script each
