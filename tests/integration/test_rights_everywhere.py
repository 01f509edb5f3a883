"""Every command that acts or reads asks for its right: one table, walked over the click tree.

Each command of ``flow`` (found by walking the click tree, as the typed-mistakes battery
does, so a new command fails here until it is classified) is either in :data:`NEEDS`, with
the rights the spec names for it, or in :data:`FREE`, with why it needs none. Against the
same seeded SQLite home as that battery, each command of :data:`NEEDS` is run with its valid
arguments:

- as ``bob`` holding no right: exit 5, one line on stderr naming bob, the right and an
  object, and the database exactly as before (an SQL dump compared);
- as ``bob`` holding exactly its rights: anything but exit 5 (services point at a closed
  port, so a command that gets past the check may end with 6);
- as ``bob`` holding all of them but one, for commands needing several: exit 5 naming the
  one missing.

Who acts is set by replacing :func:`shellflow.model.access.current_principal`, the one place
every front asks (a login, later, changes who acts there and nowhere else).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import typed_world as world
from tests.integration.test_typed_mistakes import Battery, broken_rules, seeded  # noqa: F401

# The rights each command needs with the battery's valid arguments (in the order it asks).
NEEDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("add", "agent"): ("ADD_AGENT",),
    ("add", "argument"): ("CREATE",),
    ("add", "deployment"): ("CREATE",),
    ("add", "network"): ("CREATE",),
    ("add", "node"): ("ADD_NODE",),
    ("add", "plug"): ("ADD_PLUG",),
    ("add", "privilege"): ("ADD_PRIVILEGE",),
    ("add", "processor"): ("ADD_PROCESSOR",),
    ("add", "queue"): ("ADD_QUEUE",),
    ("add", "role"): ("ADD_ROLE",),
    ("add", "scheduler"): ("ADD_SCHEDULER",),
    ("add", "socket"): ("ADD_SOCKET",),
    ("add", "user"): ("ADD_USER",),
    ("agent", "start"): ("START_AGENT",),
    ("agent", "status"): ("LS_AGENTS",),
    ("agent", "stop"): ("START_AGENT",),
    ("compose", "diff"): ("LS_QUEUES", "LS_PROCESSORS", "LS_SOCKETS", "LS_PLUGS"),
    ("compose", "down"): ("DELETE_QUEUE", "DELETE_PROCESSOR", "DELETE_SOCKET"),
    ("compose", "export"): ("LS_QUEUES", "LS_PROCESSORS", "LS_SOCKETS", "LS_PLUGS"),
    ("compose", "up"): ("ADD_QUEUE", "ADD_PROCESSOR", "ADD_SOCKET"),
    ("config", "get"): ("READ",),
    ("config", "path"): ("READ",),
    ("config", "set"): ("ALL",),
    ("config", "show"): ("READ",),
    ("config", "unset"): ("ALL",),
    ("db", "drop"): ("DB_DROP",),
    ("db", "init"): ("DB_INIT",),
    ("db", "json"): ("READ",),
    ("db", "migrate"): ("DB_INIT",),
    ("db", "rebuild"): ("DB_DROP", "DB_INIT"),
    ("delete", "agent"): ("DELETE_AGENT",),
    ("delete", "argument"): ("DELETE",),
    ("delete", "deployment"): ("DELETE",),
    ("delete", "network"): ("DELETE",),
    ("delete", "node"): ("DELETE_NODE",),
    ("delete", "plug"): ("DELETE_PLUG",),
    ("delete", "privilege"): ("DELETE_PRIVILEGE",),
    ("delete", "processor"): ("DELETE_PROCESSOR",),
    ("delete", "queue"): ("DELETE_QUEUE",),
    ("delete", "role"): ("DELETE_ROLE",),
    ("delete", "scheduler"): ("DELETE_SCHEDULER",),
    ("delete", "socket"): ("DELETE_SOCKET",),
    ("delete", "user"): ("DELETE_USER",),
    ("listen",): ("LISTEN",),
    ("top",): ("LISTEN",),
    ("ls", "agent"): ("LS_AGENTS",),
    ("ls", "argument"): ("READ",),
    ("ls", "audit"): ("READ_AUDIT",),
    ("ls", "call"): ("READ_CALL",),
    ("ls", "calls"): ("READ_CALL",),
    ("ls", "metrics"): ("READ_CALL",),
    ("ls", "deployment"): ("READ",),
    ("ls", "network"): ("READ",),
    ("ls", "node"): ("LS_NODES",),
    ("ls", "plug"): ("LS_PLUGS",),
    ("ls", "privilege"): ("READ_PRIVILEGE",),
    ("ls", "processor"): ("LS_PROCESSORS",),
    ("ls", "queue"): ("LS_QUEUES",),
    ("ls", "role"): ("READ_ROLE",),
    ("ls", "scheduler"): ("LS_SCHEDULERS",),
    ("ls", "socket"): ("LS_SOCKETS",),
    ("ls", "user"): ("LS_USERS",),
    ("node", "cordon"): ("UPDATE_NODE",),
    ("node", "drain"): ("UPDATE_NODE",),
    ("node", "uncordon"): ("UPDATE_NODE",),
    ("proc", "pause"): ("PAUSE_PROCESSOR",),
    ("proc", "remove"): ("DELETE_PROCESSOR",),
    ("proc", "restart"): ("STOP_PROCESSOR", "START_PROCESSOR"),
    ("proc", "resume"): ("RESUME_PROCESSOR",),
    ("proc", "start"): ("START_PROCESSOR",),
    ("proc", "stop"): ("STOP_PROCESSOR",),
    ("proc", "update"): ("UPDATE_PROCESSOR",),
    ("shell", "aliases"): ("LS_SOCKETS",),
    ("shell", "install"): ("LS_SOCKETS",),
    ("task", "cancel"): ("CANCEL_TASK",),
    ("task", "result"): ("RUN_TASK",),
    ("task", "retry"): ("RUN_TASK",),
    ("task", "run"): ("RUN_TASK",),
    ("tui",): ("READ_CALL",),
    ("update", "agent"): ("UPDATE_AGENT",),
    ("update", "argument"): ("UPDATE",),
    ("update", "deployment"): ("UPDATE",),
    ("update", "network"): ("UPDATE",),
    ("update", "node"): ("UPDATE_NODE",),
    ("update", "plug"): ("UPDATE_PLUG",),
    ("update", "processor"): ("UPDATE_PROCESSOR",),
    ("update", "queue"): ("UPDATE_QUEUE",),
    ("update", "role"): ("UPDATE_ROLE",),
    ("update", "scheduler"): ("UPDATE_SCHEDULER",),
    ("update", "socket"): ("UPDATE_SOCKET",),
    ("update", "user"): ("UPDATE_USER",),
    ("worker", "start"): ("START_PROCESSOR",),
}

# Commands that neither act on nor read what the database holds, and why.
FREE: dict[tuple[str, ...], str] = {
    ("broker", "start"): "starts this user's own embedded broker, a process in their home",
    ("broker", "stop"): "stops this user's own embedded broker",
    ("broker", "status"): "asks whether this user's own embedded broker answers",
    ("completion", "install"): "writes a shell completion script; reads nothing shared",
    ("completion", "show"): "prints a shell completion script",
    ("ls", "rights"): "the list of rights is the program's, not the database's",
    ("login",): "proves who acts: the password is its check (failures are slowed, audited)",
    ("logout",): "ends the caller's own session",
    ("whoami",): "shows who acts",
    ("token", "create"): "a user's own token (another user's needs UPDATE_USER, asked then)",
    ("token", "ls"): "a user's own tokens (another user's need LS_USERS, asked then)",
    ("token", "revoke"): "a user's own token (another user's needs UPDATE_USER, asked then)",
}

# Arguments beyond the battery's valid ones: what a destructive command needs to go ahead.
EXTRA: dict[tuple[str, ...], tuple[str, ...]] = {
    ("db", "drop"): ("-y",),
    ("db", "rebuild"): ("-y",),
    ("proc", "update"): ("--pull",),
}


@pytest.fixture
def battery(
    seeded: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    isolated_env: Path,
) -> Iterator[Battery]:
    from tests.integration.test_typed_mistakes import _nothing_long_lived

    place = world.Place(tmp_path / "place")
    place.make()
    db = tmp_path / "model.db"
    world.fresh_copy(seeded, db)
    down = f"redis://127.0.0.1:{world.unused_port()}/0"
    monkeypatch.setenv("SHELLFLOW_DB", f"sqlite:///{db}")
    for key in ("BROKER", "BACKEND", "PUBSUB"):
        monkeypatch.setenv(f"SHELLFLOW_{key}", down)
    monkeypatch.chdir(place.root)
    _nothing_long_lived(monkeypatch)
    yield Battery(seeded, db, place)
    from shellflow.model.db import dispose_engines

    dispose_engines()


def act_as(monkeypatch: pytest.MonkeyPatch, *rights: str) -> None:
    from shellflow.model import access

    principal = access.Principal("bob", rights=frozenset(rights))
    monkeypatch.setattr(access, "current_principal", lambda *_a, **_k: principal)


def dump(db: Path) -> list[str]:
    """The database as SQL, less the audit trail: a refusal appends its own row there
    (``tests/integration/test_audit.py`` checks that row), and nothing else may change."""
    from shellflow.model.db import dispose_engines

    dispose_engines()
    with sqlite3.connect(db) as conn:
        return [line for line in conn.iterdump() if not _audit_row(line)]


def _audit_row(line: str) -> bool:
    return line.startswith('INSERT INTO "audit"') or (
        line.startswith('INSERT INTO "sqlite_sequence"') and "'audit'" in line
    )


def args_of(battery: Battery, path: tuple[str, ...]) -> list[str]:
    command = dict(world.commands())[path]
    values = world.base_args(path, command, battery.place)
    return [*path, *EXTRA.get(path, ()), *world.render(command, values)]


REFUSAL = re.compile(r"^flow: bob lacks the (\w+) right on (\S.*)$")


def refused_with(result: Any) -> str:
    """The right a refusal names, after checking it is one well-formed line."""
    lines = result.stderr.splitlines()
    assert (result.exit_code, len(lines), broken_rules(result)) == (5, 1, []), result.stderr
    found = REFUSAL.match(lines[0])
    assert found, lines[0]
    return found.group(1)


def test_every_command_is_classified() -> None:
    walked = {path for path, _ in world.commands()}
    assert walked - NEEDS.keys() - FREE.keys() == set(), "classify these in NEEDS or FREE"
    assert (NEEDS.keys() | FREE.keys()) - walked == set(), "no such commands any more"


@pytest.mark.parametrize("path", sorted(NEEDS), ids="-".join)
def test_a_command_is_refused_without_its_right_and_allowed_with_exactly_it(
    battery: Battery, monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...]
) -> None:
    rights = NEEDS[path]
    args = args_of(battery, path)
    before = dump(battery.db)
    act_as(monkeypatch)
    assert refused_with(battery(*args)) == rights[0]
    assert dump(battery.db) == before, "a refused command changed the database"
    for missing in rights[1:] if len(rights) > 1 else ():
        act_as(monkeypatch, *(r for r in rights if r != missing))
        assert refused_with(battery(*args)) == missing
        assert dump(battery.db) == before
    act_as(monkeypatch, *rights)
    allowed = battery(*args)
    assert allowed.exit_code != 5, allowed.stderr
    codes = {0} if path in EXTRA else world.control_codes(path)  # EXTRA makes it go ahead
    assert allowed.exit_code in codes, allowed.stderr


def test_a_right_for_another_action_does_not_do(
    battery: Battery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Holding many rights, but not the one asked: still refused (no right implies another,
    except ALL)."""
    act_as(monkeypatch, "ADD_QUEUE", "LS_QUEUES", "READ_QUEUE", "DELETE_PROCESSOR", "LISTEN")
    assert refused_with(battery("delete", "queue", "-n", "q1")) == "DELETE_QUEUE"
    assert refused_with(battery("ls", "calls")) == "READ_CALL"
    act_as(monkeypatch, "ALL")
    assert battery("ls", "calls").exit_code == 0


def test_reading_calls_and_listening_are_rights_of_their_own(
    battery: Battery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every right that reads the network, yet neither READ_CALL nor LISTEN: no calls, no
    events, whatever the processor or socket named; the refusal names what was asked."""
    from shellflow.model.rights import RIGHTS

    reading = [r for r in RIGHTS if r.startswith(("LS_", "READ_")) and r != "READ_CALL"]
    act_as(monkeypatch, *reading)
    result = battery("ls", "calls", "--socket", "s1")
    assert refused_with(result) == "READ_CALL" and result.stderr.endswith("socket s1\n")
    call = battery("ls", "call", "--id", world.MISSING_CALL)
    assert refused_with(call) == "READ_CALL" and world.MISSING_CALL in call.stderr
    assert refused_with(battery("listen", "-n", "p1")) == "LISTEN"
    assert refused_with(battery("listen", "-n", "global")) == "LISTEN"
    assert refused_with(battery("tui")) == "READ_CALL"
    act_as(monkeypatch, "READ_CALL")
    assert refused_with(battery("tui", "--channel", "p1")) == "LISTEN"
    act_as(monkeypatch, "READ_CALL", "LISTEN")
    assert battery("tui", "--channel", "p1").exit_code == 0
