"""``flow tui``: open the terminal dashboard.

The dashboard runs as ``python -m shellflow.tui`` in place of this process (``exec``): the
command layer never imports Textual or ``shellflow.tui`` (DESIGN.md's arrows), and the
effective settings, whatever flags, environment or ini file chose them, travel as
SHELLFLOW_* variables, which take precedence over the ini file on the other side.
"""

from __future__ import annotations

import os
import sys

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.params import TEXT


def dashboard_argv(read_only: bool, channels: tuple[str, ...], debug: bool) -> list[str]:
    """The child's command line. ``-P``, as for every other launch: without it ``python -m``
    puts the current directory first on sys.path, and a ``textual/``, ``rich/`` or
    ``argparse.py`` there would run with the database URL in its environment."""
    argv = [sys.executable, "-P", "-m", "shellflow.tui"]
    argv += ["--read-only"] if read_only else []
    argv += [word for channel in channels for word in ("--channel", channel)]
    return argv + (["--debug"] if debug else [])


def _processor_of(channel: str) -> str | None:
    """The processor a live channel (``PROC``, ``PROC.CHANNEL``, ``PROC.*``) is one of; None
    for ``global`` (every processor's)."""
    from shellflow.engine.records.events import CHANNELS, GLOBAL

    processor, dot, last = channel.rpartition(".")
    name = processor if dot and last in (*CHANNELS, "*") else channel
    return None if name == GLOBAL else name


def _check_channels(app: AppContext, channels: tuple[str, ...]) -> None:
    """Each ``--channel`` names ``global`` or a stored processor (exit 3 with close names),
    checked here: the dashboard, once started, would wait on a mistyped one for ever."""
    from shellflow.errors import NotFound
    from shellflow.model.listing import names

    wanted = {name for channel in channels if (name := _processor_of(channel)) is not None}
    if not wanted:
        return
    with app.reader() as conn:
        known = names(conn, "processor")
    for name in sorted(wanted - set(known)):
        raise NotFound("processor", name, known)


@click.command()
@click.option("--read-only", is_flag=True, help="Hide actions (pause, resume, re-run, cancel)")
@click.option(
    "--channel",
    "channels",
    multiple=True,
    type=TEXT,
    metavar="NAME",
    help="Live channel: global, PROCESSOR or PROCESSOR.CHANNEL (repeatable)",
)
@pass_app
def tui(app: AppContext, read_only: bool, channels: tuple[str, ...]) -> None:
    """Open the terminal dashboard.

    Calls (live, filtered, sorted), a call's detail and flow graph, live channels and the
    network, with pause, resume, restart, re-run and cancel. Keys: arrows and Enter open a
    call, Escape goes back, / filters, : jumps to a screen, ? shows every key, q quits.
    Works with stdin piped (it reopens the terminal).
    """
    from shellflow.config import ENV, ENV_INI, KEYS

    if not app.principal.holds_somewhere("READ_CALL"):  # it opens on its Calls screen
        app.authorize("READ_CALL", "calls")
    for channel in channels:
        app.authorize("LISTEN", channel, _processor_of(channel))
    _check_channels(app, channels)
    env = dict(os.environ)
    for key in KEYS:
        env[ENV[key]] = app.settings[key]
    env[ENV_INI] = str(app.settings.ini_path)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, dashboard_argv(read_only, channels, app.settings.debug), env)
