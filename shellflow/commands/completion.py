"""``flow completion show | install``: the shell completion scripts of bash, zsh and fish.

The scripts are click's own (what ``_FLOW_COMPLETE=bash_source flow`` prints), hardened in
small ways: whatever ``flow`` writes on stderr while completing is discarded, so nothing
but candidates can ever reach the prompt; bash quotes each candidate; fish keeps a
description that holds a comma. Each script asks ``flow`` itself for the candidates, so
commands and options added later complete without regenerating anything; the dynamic
values (names from the database) come from :mod:`shellflow.commands.complete`.

The checked-in copies under ``completions/`` are regenerated with ``make docs``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from shellflow.commands.params import Place

PROG = "flow"
COMPLETE_VAR = "_FLOW_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
# Where the wheel installs each script, under its prefix (pyproject.toml's data-files).
FILE_NAMES = {"bash": "flow.bash", "zsh": "_flow", "fish": "flow.fish"}

# (text in click's script, its replacement), for each shell.
_PATCHES: dict[str, tuple[tuple[str, str], ...]] = {
    "bash": (
        (f"{COMPLETE_VAR}=bash_complete $1)", f"{COMPLETE_VAR}=bash_complete $1 2>/dev/null)"),
        ("COMPREPLY+=($value)", 'COMPREPLY+=("$value")'),
    ),
    "zsh": (
        (
            f"{COMPLETE_VAR}=zsh_complete {PROG})",
            f"{COMPLETE_VAR}=zsh_complete {PROG} 2>/dev/null)",
        ),
    ),
    "fish": (
        (f"(commandline -t) {PROG});", f"(commandline -t) {PROG} 2>/dev/null);"),
        ('(string split "," $completion)', '(string split -m 1 "," $completion)'),
    ),
}
_HEADER = (
    "# {shell} completion for flow (shellflow), generated from click by\n"
    "# 'flow completion show {shell}'. Candidates come from 'flow' itself, names from the\n"
    "# configured database. Install: flow completion install {shell}\n"
)


def click_source(shell: str) -> str:
    """Click's completion script for ``shell``, exactly as ``_FLOW_COMPLETE=SHELL_source``."""
    from click.shell_completion import get_completion_class

    from shellflow.commands import cli

    cls = get_completion_class(shell)
    if cls is None:
        raise click.UsageError(f"unsupported shell {shell!r}: use one of {', '.join(SHELLS)}")
    completer = cls(cli, {}, PROG, COMPLETE_VAR)
    # source_template % source_vars is what source() returns, minus the bash version check
    # (which runs bash): the script is the same whichever bash prints it.
    return completer.source_template % completer.source_vars()


def harden(shell: str, source: str) -> tuple[str, list[str]]:
    """Apply the patches to click's script; also returns those that no longer apply."""
    missed = []
    for old, new in _PATCHES.get(shell, ()):
        if source.count(old) != 1:
            missed.append(old)
            continue
        source = source.replace(old, new)
    return source, missed


def script(shell: str) -> str:
    """The completion script ``flow completion show SHELL`` prints and the repository ships."""
    source, _ = harden(shell, click_source(shell))
    header = _HEADER.format(shell=shell)
    lines = source.strip("\n").split("\n")
    if lines and lines[0].startswith("#compdef"):  # zsh reads it on the first line
        return "\n".join([lines[0], header.rstrip("\n"), *lines[1:]]) + "\n"
    return header + "\n".join(lines) + "\n"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value and os.path.isabs(value) else Path.home() / fallback


def install_path(shell: str) -> Path:
    """Where ``shell`` looks for a user's completion of ``flow``."""
    if shell == "bash":  # bash-completion loads it on first use of ``flow``
        user_dir = os.environ.get("BASH_COMPLETION_USER_DIR")
        base = (
            Path(user_dir)
            if user_dir
            else _xdg("XDG_DATA_HOME", ".local/share") / "bash-completion"
        )
        return base / "completions" / PROG
    if shell == "zsh":  # a folder for the user's fpath, as Debian's site-functions is
        return _xdg("XDG_DATA_HOME", ".local/share") / "zsh" / "site-functions" / "_flow"
    return _xdg("XDG_CONFIG_HOME", ".config") / "fish" / "completions" / "flow.fish"


def _hint(shell: str, path: Path) -> str:
    if shell == "bash":
        return (
            f"bash-completion loads it in new shells; without bash-completion add "
            f"'source {path}' to ~/.bashrc"
        )
    if shell == "zsh":
        return (
            f"add 'fpath=({path.parent} $fpath)' before 'compinit' in ~/.zshrc, "
            "then start a new shell"
        )
    return "fish loads it in new shells"


def detect_shell() -> str:
    """The user's shell, from $SHELL."""
    name = Path(os.environ.get("SHELL", "")).name
    if name not in SHELLS:
        raise click.UsageError(
            "cannot tell which shell you use ($SHELL is "
            f"{os.environ.get('SHELL') or 'unset'}); name it: "
            f"flow completion install {'|'.join(SHELLS)}"
        )
    return name


@click.group()
def completion() -> None:
    """Show or install shell completion scripts."""


@completion.command("show")
@click.argument("shell", type=click.Choice(SHELLS))
def show(shell: str) -> None:
    """Print the completion script of SHELL (bash, zsh or fish).

    \b
    Load it into the running shell:
      bash:  source <(flow completion show bash)
      zsh:   source <(flow completion show zsh)
      fish:  flow completion show fish | source
    """
    from shellflow.commands.output import write_lines

    write_lines([script(shell).rstrip("\n")])


@completion.command("install")
@click.argument("shell", type=click.Choice(SHELLS), required=False)
@click.option(
    "--path",
    "target",
    type=Place(dir_okay=False, writable=True),
    help="Write the script here instead of where SHELL looks",
)
def install(shell: str | None, target: str | None) -> None:
    """Install the completion script of SHELL ($SHELL by default) where it looks.

    \b
    bash:  $XDG_DATA_HOME/bash-completion/completions/flow (bash-completion loads it)
    zsh:   $XDG_DATA_HOME/zsh/site-functions/_flow (add the folder to fpath)
    fish:  $XDG_CONFIG_HOME/fish/completions/flow.fish
    Prints the path it wrote.
    """
    from shellflow.commands.output import info, write_lines
    from shellflow.errors import CallFailed

    shell = shell or detect_shell()
    path = Path(target) if target else install_path(shell)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(script(shell), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise CallFailed(f"cannot write {path}: {exc.strerror or exc}") from exc
    info(f"Installed the {shell} completion of flow: {_hint(shell, path)}")
    write_lines([str(path)])
