"""The writers of ``flow shell``: alias lines and socket commands are one shell word per
name whatever the name holds, and names that are code or shadow a command are left out."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from shellflow.commands.shell import alias_line, script
from shellflow.commands.shell_names import MARKER, choose
from shellflow.errors import Conflict, ExitCode
from tests.hostile import SHELL_NAMES


@pytest.mark.parametrize("name", [*SHELL_NAMES, "pyfi.processors.sample.do_this"])
def test_an_alias_line_is_two_words_whatever_the_name(name: str) -> None:
    for flow in ("flow", shlex.quote("/opt/my flow/bin/flow")):
        words = shlex.split(alias_line(name, flow))
        command = f"{flow} task run -s {shlex.quote(name)}"
        assert words == ["alias", f"{name}={command}"]
        assert shlex.split(command)[-2:] == ["-s", name]


def test_a_valid_name_is_written_unquoted() -> None:
    name = "proc1@node-1:pyfi.do_this"
    assert alias_line(name, "flow") == f"alias {name}='flow task run -s {name}'"


@pytest.mark.parametrize("name", SHELL_NAMES)
def test_a_socket_command_execs_flow_with_the_name_as_one_argument(name: str) -> None:
    text = script("/opt/my flow/flow", name)
    lines = text.split("\n")
    assert lines[:2] == ["#!/bin/sh", MARKER]
    assert shlex.split("\n".join(lines[2:])) == [
        "exec", "/opt/my flow/flow", "task", "run", "-s", name, "$@"
    ]  # fmt: skip


def executable(folder: Path, name: str, text: str = "#!/bin/sh\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_names_outside_the_rule_are_always_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    for allow in (False, True):
        choice = choose([*SHELL_NAMES, "good.name"], allow_shadow=allow, aliases=True)
        assert choice.kept == ["good.name"]
        assert choice.outside_rule == SHELL_NAMES


def test_shadowing_names_are_left_out_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "tools"
    mine = tmp_path / "mine"
    found = executable(tools, "mytool")
    executable(tools, "notexec").chmod(0o644)
    executable(mine, "installed", f"#!/bin/sh\n{MARKER}\n")  # a socket command of ours
    monkeypatch.setenv("PATH", f"{tools}:{mine}")
    names = ["mytool", "notexec", "installed", "cd", "s1"]
    aliases = choose(names, allow_shadow=False, aliases=True)
    assert aliases.kept == ["notexec", "installed", "s1"]
    assert aliases.shadowing == [("mytool", str(found)), ("cd", "a shell builtin")]
    # An installed command does not replace a builtin: only PATH counts.
    install = choose(names, allow_shadow=False, aliases=False, folder=mine)
    assert install.kept == ["notexec", "installed", "cd", "s1"]
    assert choose(names, allow_shadow=True, aliases=True).kept == names
    # The folder being installed into does not shadow its own commands.
    assert choose(["mytool"], allow_shadow=False, aliases=False, folder=tools).kept == ["mytool"]


def test_those_left_out_are_one_line_and_exit_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executable(tmp_path, "mytool")
    monkeypatch.setenv("PATH", str(tmp_path))
    choice = choose(["ok", "mytool", *SHELL_NAMES], allow_shadow=False, aliases=True)
    with pytest.raises(Conflict) as caught:
        choice.refuse()
    message = caught.value.message
    assert caught.value.exit_code == ExitCode.CONFLICT
    assert "\n" not in message and "\t" not in message and "\x1b" not in message
    assert "'mytool'" in message and "--allow-shadow" in message
    assert all(repr(name) in message for name in SHELL_NAMES)
    choose(["ok"], allow_shadow=False, aliases=True).refuse()  # nothing left out: no error
