"""``flow tui`` in a real terminal: tmux runs it with stdin piped, sends keys, reads the screen."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.tui.conftest import call_id
from tests.tui.test_hostile import hostile_db  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    """A private tmux server (its own socket name), so nothing else running tmux is touched."""

    def __init__(self) -> None:
        self.server = f"sf-tui-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.server, *args], capture_output=True,
                              text=True, timeout=30, check=True)  # fmt: skip
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "tui")

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if text in shown:
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen shows:\n{shown}")
            time.sleep(0.2)

    def keys(self, *keys: str) -> None:
        for key in keys:  # one at a time: a terminal sees Escape then a key as Alt+key
            self.run("send-keys", "-t", "tui", key)
            time.sleep(0.3)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.server, "kill-server"], capture_output=True, timeout=30)


def test_flow_tui_in_tmux(filled_db, tmp_path: Path) -> None:
    url, _ = filled_db
    flow = Path(sys.executable).with_name("flow")
    env = f"SHELLFLOW_DB={shlex.quote(url)} SHELLFLOW_HOME={shlex.quote(str(tmp_path / 'h'))}"
    # stdin is a pipe: flow tui must reopen the terminal to read keys.
    command = f"echo piped | env {env} {flow} tui; echo EXIT=$?; sleep 600"
    tmux = Tmux()
    try:
        tmux.run("new-session", "-d", "-s", "tui", "-x", "80", "-y", "24", command)
        shown = tmux.wait_for("calls 1-25 of 25")
        assert "processors.sample.do_this" in shown and "running" in shown
        tmux.keys("Down", "Enter")
        shown = tmux.wait_for(f"call     {call_id(24)}")
        assert "Arguments" in shown
        tmux.keys("Escape", "n")
        shown = tmux.wait_for("proc1")
        assert "Processors" in shown and "running" in shown
        tmux.keys("c", "q")
        tmux.wait_for("EXIT=0")
    finally:
        tmux.close()


def test_flow_tui_with_an_unreachable_database_retries(tmp_path: Path) -> None:
    flow = Path(sys.executable).with_name("flow")
    url = f"sqlite:///{tmp_path / 'not-yet.db'}"
    env = f"SHELLFLOW_DB={shlex.quote(url)} SHELLFLOW_HOME={shlex.quote(str(tmp_path / 'h'))}"
    tmux = Tmux()
    try:
        tmux.run("new-session", "-d", "-s", "tui", "-x", "80", "-y", "24",
                 f"env {env} {flow} tui --read-only; echo EXIT=$?; sleep 600")  # fmt: skip
        shown = tmux.wait_for("retrying")
        assert "database unavailable" in shown
        from shellflow.model import schema

        schema.upgrade(url)
        tmux.wait_for("calls 0 of 0")
        tmux.wait_for("queues 0")
        tmux.keys("q")
        tmux.wait_for("EXIT=0")
    finally:
        tmux.close()


def test_stored_escape_sequences_never_reach_a_real_terminal(hostile_db, tmp_path: Path) -> None:  # noqa: F811
    """A call id that sets the window title (OSC 0) and names that write the clipboard
    (OSC 52), stored straight into the database: neither the dashboard nor ``flow ls call``
    lets tmux see them (with set-clipboard on, tmux keeps what OSC 52 sends as a buffer)."""
    from shellflow.printable import printable
    from tests.tui.test_hostile import CALL

    flow = Path(sys.executable).with_name("flow")
    env = (
        f"env SHELLFLOW_DB={shlex.quote(hostile_db)}"
        f" SHELLFLOW_HOME={shlex.quote(str(tmp_path / 'h'))}"
    )
    command = (
        f"{env} {flow} tui; echo TUI=$?; {env} {flow} ls call -r --id {shlex.quote(CALL)};"
        f" {env} {flow} ls calls; echo EXIT=$?; sleep 600"
    )
    tmux = Tmux()
    try:
        tmux.run("new-session", "-d", "-s", "tui", "-x", "200", "-y", "50", "sleep 600")
        tmux.run("set-option", "-g", "set-clipboard", "on")
        tmux.run("respawn-pane", "-k", "-t", "tui", command)
        tmux.wait_for("calls 1-2 of 2")
        tmux.keys("Enter")
        tmux.wait_for("Arguments")
        tmux.keys("Escape", "q")
        tmux.wait_for("EXIT=0")
        shown = tmux.run("capture-pane", "-p", "-t", "tui", "-S", "-1000")  # with its history
        assert "TUI=0" in shown
        assert printable(CALL) in shown  # the call id, written out by ls call
        assert "\\x1b]52;c;cHduZWQ=\\x07" in shown
        title = tmux.run("display-message", "-p", "-t", "tui", "#{pane_title}")
        assert "pwned" not in title
        assert tmux.run("list-buffers") == ""  # no clipboard write reached tmux
    finally:
        tmux.close()
