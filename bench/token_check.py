"""What checking a login costs ``flow task run``: the token and its rights, then the route.

A command run with a login (``SHELLFLOW_TOKEN`` or a session) reads who acts (the token's
user and rights, one query) before the socket's route. Both look-ups share one connection
(``shellflow.model.kept``): on SQLite a fresh connection's first statement parses the
schema, so a second connection would cost the check more than its query. This bench times,
in one process on an embedded home of its own, the route alone (the owner: nothing to look
up), then the token and the route on two connections (before ``kept``), then on the shared
one (what ``flow task run`` does), and prints the medians and the check's cost (target: at
most 1 ms).

    python bench/token_check.py [--rounds 300]

Measured 2026-12-06 (a shared 2-core machine): route alone 0.49 ms; with the token on two
connections 1.14 ms (+0.65 ms); on the shared one 0.64 ms (+0.15 ms). With rights held on one
processor read in the same query (two more UNION branches, revocations as NOT EXISTS), the
same day and machine, busier: +0.19 ms on the shared connection (main then: +0.16 ms).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _flow(*args: str, env: dict[str, str], stdin: str = "") -> str:
    flow = Path(sys.executable).with_name("flow")
    done = subprocess.run([str(flow), *args], env=env, input=stdin, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    rounds = parser.parse_args().rounds
    home = Path(tempfile.mkdtemp(prefix="sf-token-"))
    env = {**os.environ, "SHELLFLOW_HOME": str(home), "SHELLFLOW_INI": str(home / "none.ini")}
    env.pop("SHELLFLOW_DB", None)
    env.pop("SHELLFLOW_TOKEN", None)
    try:
        _flow("db", "init", env=env)
        _flow("add", "queue", "-n", "q1", env=env)
        _flow("add", "processor", "-n", "p1", "-g", "https://example.org/r.git", "-m", "m",
              env=env)  # fmt: skip
        _flow("add", "socket", "-n", "s1", "-q", "q1", "-pn", "p1", "-t", "f", env=env)
        _flow("add", "user", "-n", "bench", "-e", "bench@example.org", "--password-stdin",
              env=env, stdin="a password\n")  # fmt: skip
        _flow("add", "privilege", "-u", "bench", "-n", "RUN_TASK", env=env)
        token = _flow("token", "create", "-u", "bench", "--expires", "1d", env=env)
        os.environ.update({k: env[k] for k in ("SHELLFLOW_HOME", "SHELLFLOW_INI")})
        os.environ.pop("SHELLFLOW_DB", None)
        print(_measure(token, rounds))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


def _measure(token: str, rounds: int) -> str:
    from shellflow.client.oneshot import _route
    from shellflow.config import load_settings
    from shellflow.model import kept
    from shellflow.model.credentials import principal_of_token

    settings = load_settings()

    def forget() -> None:
        with kept._state.lock:
            for _, reader in kept._state.readers.values():
                reader.close()
            kept._state.readers.clear()

    def median(with_token: bool, shared: bool) -> float:
        times = []
        for _ in range(rounds):
            forget()
            started = time.perf_counter()
            if with_token:
                principal_of_token(settings.db, token, "SHELLFLOW_TOKEN")
                if not shared:
                    forget()
            _route(settings, "s1")
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    alone, apart, shared = median(False, True), median(True, False), median(True, True)
    return (f"route alone {alone:.3f} ms; token and route on two connections {apart:.3f} ms"
            f" (+{apart - alone:.3f} ms); on one kept connection {shared:.3f} ms"
            f" (+{shared - alone:.3f} ms)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
