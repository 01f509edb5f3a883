"""Socket commands as plumbum commands, for scripts that mix sockets with other programs.

    from shellflow.client.commands import sockets
    s = sockets()
    (s["pyfi.processors.sample.do_something"] << "hi" | s["pyfi.processors.sample.do_this"])()
    (local["echo"]["hi"] | s["pyfi.processors.sample.do_something"] | local["tr"]["a-z", "A-Z"])()

Each command is ``flow task run -s NAME`` with the settings of this process in its
environment, so every socket command a script starts talks to the same network as the
script's Python API. A plumbum pipeline is a real pipeline of processes joined by pipes,
so its calls share one flow run exactly as in a shell (``shellflow.client.pipes``): the
commands of one pipeline find the same first pipe and the same flow run, and each takes
the call upstream of it as its parent. ``flow=`` makes every command join one flow run
instead (``SHELLFLOW_FLOW``).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from shellflow.client.settings import resolve
from shellflow.config import ENV, KEYS

if TYPE_CHECKING:
    from plumbum.commands.base import BaseCommand

    from shellflow.config import Settings


def flow_program() -> list[str]:
    """How to start ``flow``: the script next to this interpreter, on PATH, or ``-P -m``
    (``-P``, as for every launch: a ``click/`` folder where the script runs is not imported
    into a process holding the settings)."""
    script = Path(sys.executable).with_name("flow")
    if script.exists():
        return [str(script)]
    found = shutil.which("flow")
    return [found] if found else [sys.executable, "-P", "-m", "shellflow"]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a ``flow`` process these settings."""
    env = {ENV[key]: settings[key] for key in KEYS}
    env["SHELLFLOW_INI"] = str(settings.ini_path)
    return env


def socket_command(
    name: str, settings: Settings | None = None, *, flow: str | None = None
) -> BaseCommand:
    """The plumbum command calling socket ``name`` (``flow task run -s NAME``)."""
    from plumbum import local

    program, *prefix = flow_program()
    env = settings_env(resolve(settings))
    if flow:
        env["SHELLFLOW_FLOW"] = flow
    return local[program][(*prefix, "task", "run", "-s", name)].with_env(**env)


class SocketCommands(Mapping[str, "BaseCommand"]):
    """Socket name -> plumbum command, for the sockets the database held when it was made."""

    def __init__(self, names: list[str], settings: Settings, flow: str | None) -> None:
        self._names = names
        self._settings = settings
        self._flow = flow

    def __getitem__(self, name: str) -> BaseCommand:
        if name not in self._names:
            import difflib

            close = difflib.get_close_matches(name, self._names, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise KeyError(f"no socket named {name!r}{hint}")
        return socket_command(name, self._settings, flow=self._flow)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def sockets(settings: Settings | None = None, *, flow: str | None = None) -> SocketCommands:
    """Every socket of the network as a plumbum command, by socket name."""
    from shellflow.model.listing import names, reader

    resolved = resolve(settings)
    with reader(resolved.db) as conn:
        found = names(conn, "socket")
    return SocketCommands(found, resolved, flow)
