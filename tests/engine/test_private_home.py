"""The embedded home is private: another local user reads none of it (issue 17, point 3).

The database and its WAL, the embedded broker's append-only file (which holds every call's
arguments), its log, the spool and the pipes are 0600 in folders 0700, from their creation;
a home an older shellflow left open is repaired by the next ``flow`` and says so once.
The reading is tried as a real other user (``useradd``, as root); not as root, the modes
alone are checked.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FlowRunner
from tests.engine.conftest import _stop_embedded_broker, build_network, deploy
from tests.private_postgres import os_user

OPEN = 0o077


def _walk(home: Path, *, skip: tuple[str, ...] = ()) -> Iterator[Path]:
    for root, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            if not name.startswith(skip):
                yield Path(root) / name


def _loose(home: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """Entries of the home that group or others may use (symbolic links aside)."""
    found = []
    for path in [home, *_walk(home, skip=skip)]:
        info = os.lstat(path)
        if not stat.S_ISLNK(info.st_mode) and stat.S_IMODE(info.st_mode) & OPEN:
            found.append(f"{path} {stat.S_IMODE(info.st_mode):04o}")
    return found


def _other_user() -> str:
    user = os_user()
    if user is None:
        pytest.skip("reading as another local user needs root (useradd, runuser)")
    if shutil.which("runuser") is None:
        pytest.skip("runuser is not installed")
    return user.pw_name


def _reads(user: str, path: Path) -> bool:
    """Whether ``user`` can read ``path`` (a folder: list it)."""
    command = ["ls", str(path)] if path.is_dir() else ["cat", str(path)]
    done = subprocess.run(
        ["runuser", "-u", user, "--", *command], capture_output=True, check=False
    )  # fmt: skip
    return done.returncode == 0


@pytest.fixture
def fresh_home() -> Iterator[Path]:
    """A home not made yet, in a folder every user may pass through (as a user's ~ is)."""
    parent = Path(tempfile.mkdtemp(prefix="sfp", dir="/tmp"))
    parent.chmod(0o711)
    home = parent / "home"
    try:
        yield home
    finally:
        _stop_embedded_broker(home)
        shutil.rmtree(parent, ignore_errors=True)


def test_a_new_home_is_private_from_its_creation(flow: FlowRunner, fresh_home: Path) -> None:
    # The embedded default (an empty setting is no setting), whatever the caller's environment.
    run_env = {f"SHELLFLOW_{key}": "" for key in ("DB", "BROKER", "BACKEND", "PUBSUB")}
    run_env |= {"SHELLFLOW_HOME": str(fresh_home), "SHELLFLOW_INI": str(fresh_home / "none.ini")}
    init = flow.ok("db", "init", env=run_env)
    assert "made it private" not in init.stderr  # nothing to repair: it was made private
    flow.ok("broker", "start", env=run_env)
    flow.ok("add", "queue", "-n", "q", env=run_env)  # a write: the WAL
    try:
        assert stat.S_IMODE(fresh_home.stat().st_mode) == 0o700
        made = {p.name for p in _walk(fresh_home)}
        assert {"shellflow.db", "broker.log", "broker.pid", "broker.sock"} <= made, made
        assert _loose(fresh_home) == []
    finally:
        flow("broker", "stop", env=run_env)


def test_another_user_reads_nothing_of_an_embedded_home(flow: FlowRunner) -> None:
    """Calls ran (a secret among their arguments) in a home an older shellflow left 0755:
    the first ``flow`` repairs it; then every file shellflow wrote is 0600, and another
    user can read none of them even where the owner opens the home's folder (0711)."""
    other = _other_user() if os.geteuid() == 0 else None
    with deploy("embedded", flow) as d:
        home = Path(d.env["SHELLFLOW_HOME"])
        home.chmod(0o755)
        (home / "shellflow.db").chmod(0o644)  # as an older shellflow made them
        first = d.ok("ls", "queues")
        assert "made it private" in first.stderr
        assert len(first.stderr.strip().splitlines()) == 1
        assert "made it private" not in d.ok("ls", "queues").stderr  # once
        network = build_network(d)
        d.start_worker(network["processor"])
        secret = f"secret-{uuid.uuid4().hex}"
        call = d.ok("task", "run", "-s", network["do_something"], "--data", json.dumps(secret),
                    "--async").stdout.strip()  # fmt: skip
        d.wait_for("SELECT state FROM call WHERE id = ?", (call,), [("finished",)])
        harness = ("worker-", "none.ini")  # the test's own worker logs, not shellflow's
        assert _loose(home, skip=harness) == []
        files = [p for p in _walk(home, skip=harness) if p.is_file() and not p.is_symlink()]
        names = {p.name for p in files}
        assert {"shellflow.db", "broker.log"} <= names, names
        kept = [p for p in files if "aof" in p.name and secret.encode() in p.read_bytes()]
        assert kept, f"no append-only file holds the call's argument among {sorted(names)}"
        if other is None:
            return
        assert not _reads(other, home)
        assert not _reads(other, home / "shellflow.db")
        home.chmod(0o711)  # an owner who opened the folder itself: the files still hold
        for path in [*files, *(p for p in _walk(home, skip=harness) if p.is_dir())]:
            assert not _reads(other, path), f"{other} read {path}"
        assert _reads(other, Path("/etc/hostname"))  # the check itself can succeed
