"""``flow`` as a user runs it: the installed script in a subprocess, in pipes and on terminals.

Each case starts the real program (about 0.1 s each); they check what only a real process
shows: exit codes, what lands on stdout and stderr, broken pipes, terminals and signals.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import shellflow

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
GROUPS = ("add", "ls", "update", "delete", "db", "config")
UNREACHABLE = "postgresql://flow:s3cret@127.0.0.1:1/nowhere"


def assert_one_line_error(result: Any, code: int) -> str:
    """A failure: its exit code, stdout empty, one ``flow: ...`` line on stderr, no traceback."""
    assert result.code == code, (result.code, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("flow: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def run_in_bash(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A shell pipeline with the venv's ``flow`` first on PATH."""
    full_env = {**os.environ, **(env or {}), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=120, env=full_env
    )


def read_until(
    fd: int, proc: subprocess.Popen[bytes], wanted: bytes | None, timeout: float
) -> bytes:
    """Read ``fd`` until ``wanted`` shows up (None: to the end), the process ends, or
    ``timeout`` passes."""
    data = b""
    deadline = time.monotonic() + timeout
    while (wanted is None or wanted not in data) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: every writer of the terminal has gone
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    return data


# -- the group ---------------------------------------------------------------------------------


def test_version(flow: Any) -> None:
    result = flow.ok("--version")
    assert result.stdout.strip() == f"flow, version {shellflow.__version__}"
    assert result.stderr == ""


def test_help_lists_every_group(flow: Any) -> None:
    result = flow.ok("--help")
    commands = result.stdout.split("Commands:", 1)[1].split()
    assert all(group in commands for group in GROUPS), result.stdout
    assert "--db" in result.stdout and "Exit codes" in result.stdout
    assert flow.ok().stdout == result.stdout  # no arguments: the same help


def test_shellflow_script_is_the_same_group(flow: Any) -> None:
    scripts = {
        ep.name: ep.value
        for ep in metadata.entry_points(group="console_scripts")
        if ep.name in ("flow", "shellflow")
    }
    assert scripts == {"flow": "shellflow.commands:main", "shellflow": "shellflow.commands:main"}
    proc = subprocess.run(
        [str(BIN / "shellflow"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert proc.stdout == flow.ok("--help").stdout


# -- failures ----------------------------------------------------------------------------------


def test_unknown_command_is_a_usage_error(flow: Any) -> None:
    line = assert_one_line_error(flow("lss", "queues"), 2)
    assert "'lss'" in line and "did you mean 'ls'" in line
    assert_one_line_error(flow("ls", "--no-such-option"), 2)


def test_missing_option_without_a_terminal_is_a_usage_error(flow: Any) -> None:
    line = assert_one_line_error(flow("add", "queue"), 2)
    assert "--name" in line


def test_unreachable_database_masks_its_password(flow: Any) -> None:
    line = assert_one_line_error(flow("--db", UNREACHABLE, "ls", "queues"), 6)
    assert "127.0.0.1:1" in line and "***" in line and "s3cret" not in line


def test_debug_shows_the_traceback(flow: Any, tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'absent.db'}"
    quiet = flow("--db", missing, "ls", "queues")
    assert quiet.code == 6 and "Traceback" not in quiet.stderr
    loud = flow("--debug", "--db", missing, "ls", "queues")
    assert loud.code != 0 and "Traceback" in loud.stderr and loud.stdout == ""


def test_not_found_and_duplicate_on_both_databases(flow: Any, initialised_db: str) -> None:
    flow.ok("add", "queue", "-n", "pyfi.queue1", "-t", "direct")
    line = assert_one_line_error(flow("add", "queue", "-n", "pyfi.queue1"), 4)
    assert "pyfi.queue1" in line
    line = assert_one_line_error(flow("ls", "queue", "-n", "pyfi.queue2"), 3)
    assert "did you mean 'pyfi.queue1'" in line
    assert flow.ok("ls", "queues").stdout.splitlines()[0].split("\t")[0] == "pyfi.queue1"


# -- pipes -------------------------------------------------------------------------------------


def _add_processors(url: str, count: int) -> None:
    """Many rows fast: one ORM transaction instead of ``count`` processes."""
    import shellflow.model.tables  # noqa: F401  (every mapper known before the first insert)
    from shellflow.model.db import session_scope
    from shellflow.model.network import Processor

    with session_scope(url) as session:
        session.add_all(
            Processor(
                name=f"proc{i:05d}",
                gitrepo="https://example.invalid/processors.git",
                module="pyfi.processors.sample",
                hostname="localhost",
                concurrency=2,
                description="a processor to make the listing longer than a pipe holds",
            )
            for i in range(count)
        )


def test_broken_pipe_ends_quietly(flow: Any, initialised_db: str) -> None:
    _add_processors(initialised_db, 2000)
    listing = flow.ok("ls", "processors").stdout
    assert len(listing.splitlines()) == 2000
    assert len(listing) > 2 * 65536  # more than a pipe holds, so the reader leaves early
    for args in ("ls processors", "ls processors --json"):
        proc = run_in_bash(f"set -o pipefail; flow {args} | head -1")
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        assert len(proc.stdout.splitlines()) == 1 and "proc00000" in proc.stdout
    # A reader gone before the first write (``true`` reads nothing), for the output helpers
    # and for one large click.echo (``db json``).
    for command in ("flow ls processors", "flow db json"):
        proc = run_in_bash(f"set -o pipefail; {command} | true")
        assert (proc.returncode, proc.stderr) == (0, ""), command


def test_json_lines_parse(flow: Any, initialised_db: str) -> None:
    for name in ("q.a", "q.b"):
        flow.ok("add", "queue", "-n", name)
    lines = flow.ok("ls", "queues", "--json").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["name"] for r in records] == ["q.a", "q.b"]
    one = json.loads(flow.ok("ls", "queue", "-n", "q.b", "--json").stdout)
    assert isinstance(one, dict) and one["name"] == "q.b"
    shown = flow.ok("config", "show", "--json").stdout.splitlines()
    settings = [json.loads(line) for line in shown]
    assert any(row["setting"] == "db" and row["source"] == "env SHELLFLOW_DB" for row in settings)


def test_no_escape_sequences_when_piped(
    flow: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    env = {"TERM": "xterm-256color"}
    flow.ok("add", "queue", "-n", "q.colour")
    results = [
        flow("--help", env=env),
        flow("ls", "queues", env=env),
        flow("config", "show", env=env),
        flow("ls", "queue", "-n", "q.absent", env=env),
    ]
    assert [r.code for r in results] == [0, 0, 0, 3]
    for result in results:
        assert "\x1b" not in result.stdout + result.stderr


# -- terminals and signals ---------------------------------------------------------------------


def _on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run ``flow ARGS`` with stdout on a pseudo-terminal; returns what it printed there."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN / "flow"), *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    os.close(slave)
    try:
        out = read_until(master, proc, None, timeout=60)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        os.close(master)
        if proc.stderr:
            proc.stderr.close()
    return out.decode().replace("\r\n", "\n")


def test_table_on_a_terminal_honours_no_color(
    flow: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow.ok("add", "queue", "-n", "q.tty")
    monkeypatch.delenv("NO_COLOR", raising=False)
    env = {"TERM": "xterm-256color", "COLUMNS": "120"}
    coloured = _on_a_terminal(["ls", "queues"], env)
    assert "q.tty" in coloured and "│" in coloured and "\t" not in coloured
    assert "\x1b[" in coloured
    plain = _on_a_terminal(["ls", "queues"], {**env, "NO_COLOR": "1"})
    assert "q.tty" in plain and "│" in plain and "\x1b" not in plain


def _interrupt(proc: subprocess.Popen[bytes]) -> int:
    """Send SIGINT until the process ends.

    A signal that lands after the prompt is written but before the read starts is only
    noticed when the read returns, so one more may be needed; they are spaced widely enough
    that a second never hits the handling of the first.
    """
    time.sleep(0.2)  # let it reach the read
    for _ in range(5):
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    raise AssertionError("flow did not end on SIGINT")


def test_ctrl_c_at_a_prompt_exits_130() -> None:
    """A prompt (stdin on a terminal) interrupted by SIGINT: one line, exit 130."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN / "flow"), "add", "queue"],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # A background job inherits SIGINT ignored (and Python then keeps ignoring it).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    os.close(slave)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        prompt = read_until(proc.stderr.fileno(), proc, b"Name", timeout=60)
        assert b"Name" in prompt, prompt
        code = _interrupt(proc)
        rest = proc.stderr.read().decode()
        out = proc.stdout.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert code == 130
    assert rest.strip().splitlines()[-1] == "flow: interrupted"
    assert "Traceback" not in rest and out == ""


# -- the demo ----------------------------------------------------------------------------------


def test_quickstart_demo_runs_green(tmp_path: Path) -> None:
    """``make demo``'s script on the embedded default (it empties its home: give it its own)."""
    home = tmp_path / "demo-home"
    proc = run_in_bash(
        f"bash {REPO / 'examples' / 'quickstart.sh'}", env={"SHELLFLOW_HOME": str(home)}
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "pyfi.processors.sample.do_this" in proc.stdout
    assert (home / "shellflow.db").exists()
