"""The completion scripts in real shells: bash, zsh and fish complete names from the database.

bash runs twice over: its completion function driven through COMP_WORDS (as readline would
call it), and an interactive bash under a pseudo-terminal where TAB is pressed. zsh runs
interactively under a pseudo-terminal; fish answers ``complete -C``. A shell that is not
installed skips its tests with one line (``apt-get install zsh fish bash-completion``).
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPLETIONS = ROOT / "completions"
BIN = Path(sys.executable).parent
SOCKETS = [f"pyfi.processors.sample.{t}" for t in ("do_something", "do_that", "do_this")]
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|[\x07\x08]")


def needs(program: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed (apt-get install {program})")


@pytest.fixture
def network(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A SQLite network with two queues, a processor and three sockets."""
    from shellflow.model import schema
    from shellflow.model.db import dispose_engines

    url = f"sqlite:///{tmp_path / 'model.db'}"
    monkeypatch.setenv("SHELLFLOW_DB", url)
    schema.upgrade(url)
    cli.ok("add", "queue", "-n", "pyfi.queue1", "-t", "direct")
    cli.ok("add", "queue", "-n", "other.q", "-t", "fanout")
    cli.ok("add", "processor", "-n", "proc1", "-g", "/repo", "-m", "pyfi.processors.sample",
           "-h", "localhost")  # fmt: skip
    for name in SOCKETS:
        task = name.rsplit(".", 1)[1]
        cli.ok("add", "socket", "-n", name, "-q", "pyfi.queue1", "-pn", "proc1", "-t", task)
    yield url
    dispose_engines()


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    """The environment of the shells: flow on PATH, a home of their own, no user config."""
    home = tmp_path / "shell-home"
    home.mkdir()
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "TERM": "xterm",
        "INPUTRC": "/dev/null",
    }


class Terminal:
    """An interactive program under a pseudo-terminal: type, then wait for what it shows."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.execvpe(argv[0], argv, env)
        self.output = ""

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def screen(self) -> str:
        """What was shown so far, without the terminal's escape sequences."""
        return ANSI.sub("", self.output.replace("\r", ""))

    def wait_for(self, found: Callable[[str], bool], timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found(self.screen()):
                return self.screen()
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                self.output += data.decode(errors="replace")
        raise AssertionError(f"timed out; the terminal shows:\n{self.screen()[-3000:]}")

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except OSError:
            pass
        os.close(self.fd)


@pytest.fixture
def terminal() -> Iterator[Callable[[list[str], dict[str, str]], Terminal]]:
    opened: list[Terminal] = []

    def start(argv: list[str], env: dict[str, str]) -> Terminal:
        opened.append(Terminal(argv, env))
        return opened[-1]

    yield start
    for term in opened:
        term.close()


PROMPT = "READY> "
# Split so that the echo of the command setting it never looks like the prompt itself.
SET_PROMPT = "PS1='READ''Y> '"


def prompts(screen: str) -> int:
    return screen.count(PROMPT)


# -- bash ----------------------------------------------------------------------------------


def bash_complete(line: str, env: dict[str, str], script: Path, tmp_path: Path) -> list[str]:
    """COMPREPLY of the sourced script's function for ``line``, as readline would ask."""
    words = line.split(" ")
    quoted = " ".join(f"'{w}'" for w in words)
    program = (
        f"source {script}\n"
        f"COMP_LINE='{line}'; COMP_POINT={len(line)}; COMP_WORDS=({quoted});"
        f" COMP_CWORD={len(words) - 1}\n"
        f"_flow_completion flow '{words[-1]}' '{words[-2]}' 2>{tmp_path / 'stderr'}\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-i", "-c", program],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "stderr").read_text() == ""  # nothing for the prompt, ever
    return [w for w in proc.stdout.split("\n") if w]


def test_bash_function_completes_database_names(
    network: str, shell_env: dict[str, str], tmp_path: Path
) -> None:
    script = COMPLETIONS / "flow.bash"
    assert bash_complete("flow ls socket -n pyfi.processors.sample.do_th", shell_env, script,
                         tmp_path) == SOCKETS[1:]  # fmt: skip
    assert bash_complete("flow add socket -q ", shell_env, script, tmp_path) == [
        "other.q",
        "pyfi.queue1",
    ]
    assert bash_complete("flow task run -s ", shell_env, script, tmp_path) == SOCKETS
    assert "completion" in bash_complete("flow ", shell_env, script, tmp_path)


def test_bash_function_is_silent_without_a_database(
    shell_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**shell_env, "SHELLFLOW_DB": f"sqlite:///{tmp_path / 'missing' / 'x.db'}"}
    assert bash_complete("flow task run -s ", env, COMPLETIONS / "flow.bash", tmp_path) == []


def test_bash_completes_on_tab(network: str, shell_env: dict[str, str], terminal) -> None:
    bash = terminal(["bash", "--norc", "--noprofile", "-i"], shell_env)
    bash.type(f"{SET_PROMPT}; source {COMPLETIONS / 'flow.bash'}\n")
    bash.wait_for(lambda s: prompts(s) == 1)
    bash.type("flow ls socket -n pyfi.processors.sample.do_thi\t")
    bash.wait_for(lambda s: "flow ls socket -n pyfi.processors.sample.do_this " in s)
    bash.type("\x15flow add socket -q \t\t")  # ^U clears the line; two TABs list
    listed = re.compile(r"other\.q +pyfi\.queue1")
    screen = bash.wait_for(lambda s: listed.search(s) is not None)
    assert "Traceback" not in screen


def test_bash_completion_loads_the_installed_script(
    network: str, shell_env: dict[str, str], terminal, cli
) -> None:
    """``flow completion install bash`` puts it where bash-completion looks on first use."""
    if not BASH_COMPLETION.exists():
        pytest.skip("bash-completion is not installed (apt-get install bash-completion)")
    installed = Path(cli.ok("completion", "install", "bash").stdout.strip())
    assert installed.exists()
    env = {**shell_env, "XDG_DATA_HOME": os.environ["XDG_DATA_HOME"]}
    bash = terminal(["bash", "--norc", "--noprofile", "-i"], env)
    bash.type(f"{SET_PROMPT}; source {BASH_COMPLETION}\n")
    bash.wait_for(lambda s: prompts(s) == 1)
    bash.type("flow task run -s pyfi.processors.sample.do_so\t")
    bash.wait_for(lambda s: "flow task run -s pyfi.processors.sample.do_something " in s)


# -- zsh -----------------------------------------------------------------------------------


def zsh_session(terminal, env: dict[str, str], setup: str) -> Terminal:
    zsh = terminal(["zsh", "-f", "-i"], env)
    zsh.type(f"{SET_PROMPT}; {setup}\n")
    zsh.wait_for(lambda s: prompts(s) == 1)
    return zsh


def test_zsh_completes_names_with_descriptions(
    network: str, shell_env: dict[str, str], terminal, cli
) -> None:
    """Installed where ``flow completion install zsh`` says, autoloaded from fpath."""
    needs("zsh")
    installed = Path(cli.ok("completion", "install", "zsh").stdout.strip())
    setup = f"fpath=({installed.parent} $fpath); autoload -Uz compinit; compinit -u"
    zsh = zsh_session(terminal, shell_env, setup)
    zsh.type("flow ls socket -n pyfi.processors.sample.do_thi\t")
    zsh.wait_for(lambda s: "flow ls socket -n pyfi.processors.sample.do_this " in s)
    zsh.type("\x15flow task run -s pyfi.processors.sample.do_\t\t")
    screen = zsh.wait_for(lambda s: all(f"{t} of proc1" in s for t in ("do_that", "do_this")))
    for name in SOCKETS:
        assert name in screen
    assert "queue pyfi.queue1" in screen
    assert "Traceback" not in screen


def test_zsh_script_works_when_sourced(network: str, shell_env: dict[str, str], terminal) -> None:
    needs("zsh")
    zsh = zsh_session(
        terminal, shell_env, f"autoload -Uz compinit; compinit -u; source {COMPLETIONS / '_flow'}"
    )
    zsh.type("flow add socket -q pyfi\t")
    zsh.wait_for(lambda s: "flow add socket -q pyfi.queue1 " in s)


# -- fish ----------------------------------------------------------------------------------


def fish_complete(line: str, env: dict[str, str], source: Path | None) -> list[tuple[str, str]]:
    """(candidate, description) of fish's ``complete -C``."""
    program = (f"source {source}; " if source else "") + f"complete -C '{line}'"
    args = ["fish", "--no-config", "-c", program] if source else ["fish", "-c", program]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    pairs = [(*ln.split("\t", 1), "")[:2] for ln in proc.stdout.splitlines()]
    return [(value, help_) for value, help_ in pairs]


def test_fish_completes_names_with_descriptions(network: str, shell_env: dict[str, str]) -> None:
    needs("fish")
    script = COMPLETIONS / "flow.fish"
    assert fish_complete("flow ls socket -n pyfi.processors.sample.do_th", shell_env, script) == [
        (SOCKETS[1], "do_that of proc1, queue pyfi.queue1"),
        (SOCKETS[2], "do_this of proc1, queue pyfi.queue1"),
    ]
    # A description holding commas arrives whole.
    assert fish_complete("flow add socket -pn ", shell_env, script) == [
        ("proc1", "pyfi.processors.sample, on localhost, ready")
    ]


def test_fish_loads_the_installed_script(network: str, shell_env: dict[str, str], cli) -> None:
    needs("fish")
    installed = Path(cli.ok("completion", "install", "fish").stdout.strip())
    env = {**shell_env, "XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"]}
    assert installed.is_relative_to(env["XDG_CONFIG_HOME"])
    assert fish_complete("flow add socket -q ", env, None) == [
        ("other.q", "fanout queue"),
        ("pyfi.queue1", "direct queue"),
    ]


def test_fish_is_silent_without_a_database(shell_env: dict[str, str], tmp_path: Path) -> None:
    needs("fish")
    env = {**shell_env, "SHELLFLOW_DB": "postgresql://u:pw@127.0.0.1:1/none"}
    assert fish_complete("flow task run -s ", env, COMPLETIONS / "flow.fish") == []
