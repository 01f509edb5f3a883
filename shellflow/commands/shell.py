"""``flow shell``: every socket as a shell command (spec chapter 1, listing 3).

``aliases`` prints alias lines to ``eval`` in a shell; ``install DIR`` writes one small
executable per socket that ``exec``s ``flow task run -s NAME``, so the commands start as
fast as ``flow task run`` does and work from any shell, script or ``xargs``.
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

MARKER = "# shellflow socket command"


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


@shell.command("aliases")
@click.option("--absolute", is_flag=True, help="Call flow by its absolute path")
@pass_app
def shell_aliases(app: AppContext, absolute: bool) -> None:
    """Print one alias per socket; use: eval "$(flow shell aliases)"."""
    app.authorize("LS_SOCKETS")
    flow = flow_executable() if absolute else "flow"
    write_lines(
        f"alias {name}={shlex.quote(f'{flow} task run -s {shlex.quote(name)}')}"
        for name in _socket_names(app)
    )


def _script(flow: str, socket: str) -> str:
    return f'#!/bin/sh\n{MARKER}\nexec {shlex.quote(flow)} task run -s {shlex.quote(socket)} "$@"\n'


@shell.command("install")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@pass_app
def shell_install(app: AppContext, folder: Path) -> None:
    """Write one executable per socket into FOLDER (put FOLDER on your PATH).

    Commands of sockets that no longer exist are removed; other files are left alone.
    """
    app.authorize("LS_SOCKETS")
    flow = flow_executable()
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {name for name in _socket_names(app) if "/" not in name and name not in (".", "..")}
    for path in folder.iterdir():
        if path.name not in wanted and path.is_file() and _ours(path):
            path.unlink()
            info(f"Removed {path}")
    for name in sorted(wanted):
        path = folder / name
        if path.exists() and not _ours(path):
            info(f"Skipped {path}: not written by shellflow")
            continue
        tmp = folder / f".{name}.tmp"
        tmp.write_text(_script(flow, name))
        tmp.chmod(0o755)
        os.replace(tmp, path)
    info(f"Installed {len(wanted)} socket commands in {folder}")


def _ours(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return MARKER in handle.read(200)
    except OSError:
        return False
