"""The world the typed-mistakes battery runs in: a seeded SQLite home, each command's valid
arguments, and the hostile values each kind of parameter is given.

Kept apart from the battery itself so that the test module reads as its rules.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

from shellflow.commands import cli as root

# One object of every kind, named so that other options can point at it.
EXISTING = {
    "network": "net1",
    "scheduler": "sc1",
    "node": "n1",
    "agent": "ag1",
    "queue": "q1",
    "processor": "p1",
    "socket": "s1",
    "plug": "pl1",
    "argument": "a1",
    "deployment": "d1",
    "user": "u1",
    "role": "r1",
    "privilege": "READ",
}

SEED = [
    ("add", "network", "-n", "net1"),
    ("add", "scheduler", "-n", "sc1"),
    ("add", "node", "-n", "n1", "-h", "h1", "--network", "net1", "--scheduler", "sc1"),
    ("add", "agent", "-n", "ag1", "--node", "n1"),
    ("add", "node", "-n", "n2", "-h", "h2"),  # free for a new agent
    ("add", "queue", "-n", "q1"),
    ("add", "processor", "-n", "p1", "-m", "mod", "-g", "https://example.org/r.git", "-h", "h1"),
    ("add", "socket", "-n", "s1", "-q", "q1", "-pn", "p1", "-t", "t1"),
    ("add", "socket", "-n", "s2", "-q", "q1", "-pn", "p1", "-t", "t2"),
    ("add", "plug", "-n", "pl1", "-q", "q1", "-s", "s1", "-t", "s2"),
    ("add", "argument", "-n", "a1", "-s", "s1"),
    ("add", "deployment", "-n", "d1", "-pn", "p1", "-h", "h1"),
    ("add", "user", "-n", "u1", "-e", "u1@example.org", "-p", "pw"),
    ("add", "role", "-n", "r1"),
    ("add", "privilege", "-n", "READ", "-u", "u1"),
]

COMPOSE = """\
version: 1
queues:
  cq: {type: direct}
processors:
  cp: {gitrepo: https://example.org/r.git, module: mod, hostname: h1}
sockets:
  cs: {queue: cq, processor: cp, task: t}
"""

MISSING_CALL = "00000000-0000-4000-8000-000000000000"


def unused_port() -> int:
    """A TCP port nothing listens on (so a service there fails fast: exit 6)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Place:
    """Paths the hostile values and valid arguments point at, under one test folder."""

    root: Path

    @property
    def folder(self) -> Path:
        return self.root / "a-folder"

    @property
    def missing(self) -> Path:
        return self.root / "no-such-file.yaml"

    @property
    def not_utf8(self) -> Path:
        return self.root / "latin1.yaml"

    @property
    def compose(self) -> Path:
        return self.root / "network.yaml"

    def make(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.not_utf8.write_bytes(b"version: 1\nqueues:\n  caf\xe9: {}\n")
        self.compose.write_text(COMPOSE)


Found = tuple[tuple[str, ...], click.Command]


def commands() -> Iterator[Found]:
    """Every command under ``flow``, by walking the click tree (hidden aliases left out)."""

    def walk(command: click.Command, path: tuple[str, ...]) -> Iterator[Found]:
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    yield from walk(sub, (*path, name))
        else:
            yield path, command

    yield from walk(root, ())


# Valid values of the options that name something, by parameter name.
VALID = {
    "queue": "q1",
    "processor": "p1",
    "task": "t9",
    "module": "mod",
    "gitrepo": "https://example.org/r.git",
    "source": "s1",
    "target": "s2",
    "socket": "s1",
    "node": "n1",
    "hostname": "h1",
    "email": "x@example.org",
    "password": "pw",
    "call_id": MISSING_CALL,
    "id": MISSING_CALL,
    "shell": "bash",
}


def base_args(path: tuple[str, ...], command: click.Command, place: Place) -> dict[str, str]:
    """The value of each required parameter (and of the few a command needs beyond click's
    ``required``) that makes the command valid, by parameter name."""
    verb, kind = (*path, "")[:2]
    values: dict[str, str] = {}
    for param in command.params:
        if param.name == "name" and verb in ("add", "update", "delete", "ls") and kind:
            if verb == "add" and kind == "privilege":
                values["name"] = "CREATE"
            elif verb == "add":
                values["name"] = "fresh1"
            else:
                values["name"] = EXISTING[kind]
        elif param.name == "name" or (param.name == "processor" and path[0] == "worker"):
            values[str(param.name)] = "p1"
        elif _required(param) and param.name in VALID:
            values[str(param.name)] = VALID[str(param.name)]
    extra = {
        ("add", "privilege"): {"user": "u1"},
        ("add", "agent"): {"node": "n2"},
        ("delete", "privilege"): {"user": "u1"},
        ("delete", "argument"): {"socket": "s1"},
        ("update", "argument"): {"socket": "s1"},
        ("compose", "up"): {"file": str(place.compose)},
        ("compose", "down"): {"file": str(place.compose)},
        ("compose", "diff"): {"file": str(place.compose)},
        ("completion", "install"): {"shell": "bash", "target": str(place.root / "c" / "flow")},
        ("shell", "install"): {"folder": str(place.root / "bin")},
        ("compose", "export"): {"output": str(place.root / "export.yaml")},
        ("agent", "start"): {"node": "n1"},
        ("node", "cordon"): {"name": "n1"},
        ("node", "uncordon"): {"name": "n1"},
        ("node", "drain"): {"name": "n1"},
        ("task", "retry"): {"call_id": MISSING_CALL},
        ("config", "set"): {"key": "repos.allow", "values": "https://example.invalid/*"},
        ("config", "get"): {"key": "repos.allow"},
        ("config", "unset"): {"key": "repos.allow"},
        ("login",): {"user": "u1"},
        ("token", "create"): {"user": "u1"},
        ("token", "ls"): {"user": "u1"},
        ("token", "revoke"): {"user": "u1", "ident": "no_such_token"},
    }.get(path[:2], {})
    return values | extra


def _required(param: click.Parameter) -> bool:
    """Required by click, or by ``flow add`` (which prompts on a terminal, so leaves it
    optional to click and says ``[required]`` in the help)."""
    return param.required or "[required]" in (getattr(param, "help", None) or "")


def control_codes(path: tuple[str, ...]) -> set[int]:
    """What a command given only its valid arguments ends with: 0, or 6 where it needs a
    service (all point at a closed port); an update with nothing to change is a usage error,
    a call id that is not stored is not found."""
    if path[0] == "update" or path == ("proc", "update"):  # proc update: --pull or nothing
        return {2}
    if path[0] == "delete":
        return {0, 4}  # 4: others depend on it (without --cascade)
    if path[0] == "broker":
        return {2}  # the broker URL is not the embedded one
    if path == ("login",):
        return {2}  # no terminal to ask the password on, and no --password-stdin
    if path == ("token", "revoke"):
        return {3}  # no such token
    if path in (("task", "result"), ("task", "cancel"), ("task", "retry"), ("ls", "call")):
        return {3, 6}
    return {0, 6}


def render(command: click.Command, values: dict[str, str]) -> list[str]:
    """``values`` (by parameter name) as an argument list: options first, then arguments."""
    options: list[str] = []
    arguments: list[str] = []
    for param in command.params:
        if param.name not in values:
            continue
        value = values[str(param.name)]
        if isinstance(param, click.Argument):
            arguments.append(value)
        else:
            options += [param.opts[0], value]
    return [*options, *arguments]


LONG = "x" * 5000
NOT_UTF8 = os.fsdecode(b"caf\xe9")  # what Python makes of a non-UTF-8 byte in argv
CONTROL = "a\x1b[2J\x07b"  # reaches the store: shown escaped, never raw, by the outputs
NUL = "a\x00b"  # only in-process: no argv can hold one
HUGE = "99999999999999999999999"
UNKNOWN_URL = "xyz://a"
NO_SUCH = "no_such_name_zz"


def hostile(param: click.Parameter, place: Place) -> list[str]:
    """The hostile values a parameter of this type is given."""
    kind = param.type
    if isinstance(kind, click.types.IntParamType):  # INT and IntRange
        return ["", "-1", "0", HUGE, "-" + HUGE, "nan", "1.5", "abc"]
    if isinstance(kind, click.types.FloatParamType):  # FLOAT and FloatRange
        return ["", "-1", "nan", "inf", "-inf", "1e999", "abc"]
    if isinstance(kind, click.Choice):
        return ["", NO_SUCH, CONTROL]
    if isinstance(kind, click.types.BoolParamType):
        return ["", "maybe"]
    if isinstance(kind, click.Path):
        folder, missing, latin = str(place.folder), str(place.missing), str(place.not_utf8)
        return ["", folder, missing, latin, NOT_UTF8, CONTROL, NUL]
    return [
        "",
        " ",
        UNKNOWN_URL,
        NO_SUCH,
        LONG,
        CONTROL,
        NUL,
        NOT_UTF8,
        str(place.folder),
        str(place.missing),
        "-1",
        "nan",
        HUGE,
    ]


def fresh_copy(seed: Path, target: Path) -> None:
    """Put the seeded database back (its pooled connections closed first)."""
    from shellflow.model.db import dispose_engines

    dispose_engines()
    for extra in ("-wal", "-shm", "-journal"):
        Path(f"{target}{extra}").unlink(missing_ok=True)
    shutil.copyfile(seed, target)


def unique() -> str:
    return uuid.uuid4().hex[:8]
