"""``flow shell``: every socket as a shell command (spec chapter 1, listing 3).

``aliases`` prints alias lines to ``eval`` in a shell; ``install DIR`` writes one small
executable per socket that ``exec``s ``flow task run -s NAME``, so the commands start as
fast as ``flow task run`` does and work from any shell, script or ``xargs``. Which names
may become commands (none that is code, none that shadows another command) is
:mod:`shellflow.commands.shell_names`'s to say.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info, write_lines
from shellflow.commands.params import Place
from shellflow.commands.shell_names import MARKER, choose, ours

ALLOW_SHADOW = click.option(
    "--allow-shadow",
    is_flag=True,
    help="Also write sockets named like a command on PATH (or, for aliases, a shell builtin)",
)
LEFT_OUT = (
    "Sockets named like {what} are left out unless --allow-shadow, and so are names outside"
    " the name rule (stored before it): the others are written, one stderr line names those"
    " left out, and the exit code is 4."
)


def flow_executable() -> str:
    """The ``flow`` being run now, as an absolute path (falls back to PATH lookup)."""
    argv0 = sys.argv[0]
    if os.sep in argv0 and os.access(argv0, os.X_OK):
        return str(Path(argv0).resolve())
    return shutil.which("flow") or "flow"


def _socket_names(app: AppContext) -> list[str]:
    from shellflow.model.listing import names

    with app.reader() as conn:
        return names(conn, "socket")


@click.group()
def shell() -> None:
    """Sockets as shell commands."""


def alias_line(name: str, flow: str) -> str:
    """``alias NAME='FLOW task run -s NAME'``, every part quoted for the shell that evals it."""
    command = f"{flow} task run -s {shlex.quote(name)}"
    return f"alias {shlex.quote(name)}={shlex.quote(command)}"


@shell.command(
    "aliases", epilog=LEFT_OUT.format(what="a command on PATH (ls, sudo) or a shell builtin (cd)")
)
@click.option("--absolute", is_flag=True, help="Call flow by its absolute path")
@ALLOW_SHADOW
@pass_app
def shell_aliases(app: AppContext, absolute: bool, allow_shadow: bool) -> None:
    """Print one alias per socket; use: eval "$(flow shell aliases)"."""
    app.authorize("LS_SOCKETS", "sockets")
    flow = shlex.quote(flow_executable()) if absolute else "flow"
    choice = choose(_socket_names(app), allow_shadow=allow_shadow, aliases=True)
    write_lines(alias_line(name, flow) for name in choice.kept)
    choice.refuse()


def script(flow: str, socket: str) -> str:
    """The socket command: ``exec``s ``flow task run -s SOCKET`` with its arguments."""
    return f'#!/bin/sh\n{MARKER}\nexec {shlex.quote(flow)} task run -s {shlex.quote(socket)} "$@"\n'


@shell.command("install", epilog=LEFT_OUT.format(what="a command on PATH (ls, sudo, flow)"))
@click.argument("folder", type=Place(file_okay=False, path_type=Path))
@ALLOW_SHADOW
@pass_app
def shell_install(app: AppContext, folder: Path, allow_shadow: bool) -> None:
    """Write one executable per socket into FOLDER (put FOLDER on your PATH).

    Commands of sockets that no longer exist are removed; other files are left alone.
    """
    app.authorize("LS_SOCKETS", "sockets")
    flow = flow_executable()
    folder.mkdir(parents=True, exist_ok=True)
    choice = choose(_socket_names(app), allow_shadow=allow_shadow, aliases=False, folder=folder)
    wanted = set(choice.kept)
    for path in folder.iterdir():
        if path.name not in wanted and path.is_file() and ours(path):
            path.unlink()
            info(f"Removed {path}")
    for name in sorted(wanted):
        path = folder / name
        if path.exists() and not ours(path):
            info(f"Skipped {path}: not written by shellflow")
            continue
        tmp = folder / f".{name}.tmp"
        tmp.write_text(script(flow, name))
        tmp.chmod(0o755)
        os.replace(tmp, path)
    info(f"Installed {len(wanted)} socket commands in {folder}")
    choice.refuse()
