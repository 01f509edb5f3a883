"""Socket, queue and processor names written straight into the database (as one filled
before the name rule may hold them) run no code in a real shell: not when the aliases are
eval'd, not from an installed socket command, not from a completion candidate. Each name
would create the file ``pwned`` in the shell's folder if it ever ran."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_completion_shells import (
    BIN,
    COMPLETIONS,
    Terminal,
    bash_complete,
    fish_complete,
    needs,
)
from tests.hostile import SHELL_NAMES, write

GOOD = ["pyfi.processors.sample.do_something", "pyfi.processors.sample.do_this"]


@pytest.fixture
def hostile(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Two good sockets and one per hostile name (renamed by raw SQL); a hostile queue and
    processor description too."""
    from shellflow.model import schema
    from shellflow.model.db import dispose_engines

    url = f"sqlite:///{tmp_path / 'model.db'}"
    monkeypatch.setenv("SHELLFLOW_DB", url)
    schema.upgrade(url)
    cli.ok("add", "queue", "-n", "pyfi.queue1")
    cli.ok("add", "queue", "-n", "bad.q")
    cli.ok("add", "processor", "-n", "proc1", "-g", "/repo", "-m", "pyfi.processors.sample",
           "-h", "localhost")  # fmt: skip
    for index, name in enumerate([*GOOD, *SHELL_NAMES]):
        cli.ok("add", "socket", "-n", f"s{index}", "-q", "pyfi.queue1", "-pn", "proc1",
               "-t", "do_this")  # fmt: skip
        write(url, "UPDATE socket SET name = :name WHERE name = :n", name=name, n=f"s{index}")
    write(url, "UPDATE queue SET name = :bad WHERE name = 'bad.q'", bad="q$(touch pwned)\nplain")
    write(url, "UPDATE processor SET hostname = :bad", bad="h\nplain\n$(touch pwned)\n_")
    yield url
    dispose_engines()


@pytest.fixture
def shell(tmp_path: Path) -> dict[str, str]:
    """The shells' environment: this flow first on PATH, a home of their own."""
    home = tmp_path / "shell-home"
    home.mkdir()
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(home), "TERM": "xterm", "INPUTRC": "/dev/null"}  # fmt: skip


def bash(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """The shells' folder: nothing may appear in it."""
    folder = tmp_path / "work"
    folder.mkdir()
    yield folder
    assert sorted(p.name for p in folder.iterdir()) == []


@pytest.mark.parametrize("absolute", [False, True])
def test_evaluated_aliases_run_nothing(
    hostile: str, shell: dict[str, str], workdir: Path, absolute: bool
) -> None:
    flag = " --absolute" if absolute else ""
    done = bash(
        "shopt -s expand_aliases\n"
        f'eval "$(flow shell aliases{flag})"; echo "exit $?"\n'
        f'flow shell aliases{flag} >/dev/null 2>&1; echo "flow $?"\n'
        "alias\n",
        shell,
        workdir,
    )
    lines = done.stdout.splitlines()
    assert lines[:2] == ["exit 0", "flow 4"], done.stdout + done.stderr
    defined = sorted(line.split("=", 1)[0].removeprefix("alias ") for line in lines[2:])
    assert defined == GOOD
    assert not (workdir / "pwned").exists()


def test_installed_commands_are_only_good_names_and_run(
    hostile: str, shell: dict[str, str], workdir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "bin"
    done = bash(f'flow shell install {folder}; echo "exit $?"', shell, workdir)
    assert done.stdout.splitlines() == ["exit 4"], done.stderr
    assert sorted(p.name for p in folder.iterdir()) == GOOD
    # Each installed command is a real one: it hands its arguments to flow task run.
    ran = bash(f'PATH="{folder}:$PATH"; {GOOD[1]} --help', shell, workdir)
    assert ran.returncode == 0, ran.stderr
    assert "Usage: flow task run" in ran.stdout


def test_a_socket_shadowing_a_command_needs_allow_shadow(
    hostile: str, shell: dict[str, str], workdir: Path, tmp_path: Path, cli
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "mytool").write_text("#!/bin/sh\necho the real mytool\n")
    (tools / "mytool").chmod(0o755)
    cli.ok("update", "socket", "-n", GOOD[0], "--rename", "mytool")
    env = {**shell, "PATH": f"{tools}:{shell['PATH']}"}
    folder = tmp_path / "bin"
    refused = bash(f'flow shell install {folder}; PATH="{folder}:$PATH"; mytool', env, workdir)
    assert refused.stdout == "the real mytool\n"
    assert "'mytool' (" in refused.stderr and "--allow-shadow" in refused.stderr
    allowed = bash(f"flow shell install --allow-shadow {folder}", env, workdir)
    assert allowed.returncode == 4  # the hostile names are still left out
    assert sorted(p.name for p in folder.iterdir()) == sorted([GOOD[1], "mytool"])


@pytest.mark.parametrize(
    "line", ["flow task run -s ", "flow ls socket -n ", "flow add socket -q ", "flow ls queue -n "]
)
def test_bash_completion_offers_only_good_names(
    hostile: str, shell: dict[str, str], workdir: Path, tmp_path: Path, line: str
) -> None:
    offered = bash_complete(line, shell, COMPLETIONS / "flow.bash", tmp_path)
    expected = GOOD if "socket -n" in line or "-s " in line else ["pyfi.queue1"]
    assert offered == expected


def test_bash_tab_then_enter_runs_nothing(
    hostile: str, shell: dict[str, str], workdir: Path, request: pytest.FixtureRequest
) -> None:
    """TAB after ``a`` would complete ``a$(touch pwned)`` if it were offered (bash puts a
    candidate on the line as it is); Enter would then run it."""
    term = Terminal(["bash", "--norc", "--noprofile", "-i"], shell)
    request.addfinalizer(term.close)
    term.type(f"cd {workdir}; PS1='READ''Y> '; source {COMPLETIONS / 'flow.bash'}\n")
    term.wait_for(lambda s: s.count("READY> ") == 1)
    term.type("flow ls socket -n a\t\n")
    term.type("echo END-$?\n")
    screen = term.wait_for(lambda s: "\nEND-" in s)
    assert "\nEND-3" in screen  # no socket named 'a'
    assert not (workdir / "pwned").exists()


def test_fish_completion_offers_only_good_names(hostile: str, shell: dict[str, str]) -> None:
    needs("fish")
    offered = fish_complete("flow task run -s ", shell, COMPLETIONS / "flow.fish")
    assert [value for value, _ in offered] == GOOD
    assert all("\n" not in help_ for _, help_ in offered)


def test_zsh_tab_then_enter_runs_nothing(
    hostile: str, shell: dict[str, str], workdir: Path, request: pytest.FixtureRequest
) -> None:
    needs("zsh")
    term = Terminal(["zsh", "-f", "-i"], shell)
    request.addfinalizer(term.close)
    term.type(
        f"cd {workdir}; PS1='READ''Y> '; autoload -Uz compinit; compinit -u;"
        f" source {COMPLETIONS / '_flow'}\n"
    )
    term.wait_for(lambda s: s.count("READY> ") == 1)
    term.type("flow ls socket -n a\t\n")
    term.type("echo END-$?\n")
    screen = term.wait_for(lambda s: "\nEND-" in s)
    assert "\nEND-3" in screen
    assert not (workdir / "pwned").exists()
