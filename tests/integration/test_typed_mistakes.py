"""Every typed mistake has its code: one table-driven battery over every command's options.

The click tree is walked, so a new command or option is covered without a new test. Each
parameter is given, in turn, hostile values chosen by its type (empty, an unknown-scheme URL,
huge and negative numbers, nan, a folder, a missing file, bytes that are not UTF-8, a name
that does not exist, a very long string, control characters), every other parameter keeping
a valid value, against a fresh SQLite home seeded with one object of each kind. Services are
pointed at a port nothing listens on, so whatever needs one fails at once with exit 6.

Whatever the value, the command must end with a code of the README's table, at most one line
on stderr when it fails, and no traceback, ``internal error`` or Python exception name. The
values that are wrong whatever the option (nan for a number, an empty required name...) must
give their code; :data:`NAMED` holds the issue's own cases with their exact codes.

Commands that would start something long-lived (an agent, a worker, the dashboard) run with
that one step replaced, so their checks must all come before it.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import click
import pytest
from click.testing import CliRunner

from tests import templates
from tests.integration import typed_world as world

TABLE = {0, 1, 2, 3, 4, 5, 6, 7, 130}
FORBIDDEN = re.compile(r"Traceback|internal error|\b[A-Z][A-Za-z]*(?:Error|Exception)\b")
PATIENCE = 20  # seconds one command may take before it counts as a hang
# Options that name an object which must already exist (on these verbs).
REFERENCES = {
    "queue",
    "processor",
    "source",
    "target",
    "socket",
    "node",
    "user",
    "role",
    "network",
    "scheduler",
    "add_role",
    "remove_role",
}  # fmt: skip  (a plug's --argument may name a new one: it is added to the target's task)
# ``ls audit --user`` filters on who acted: an OS user, a database URL's user, a deleted user
# or a name tried at a failed login are no stored user, and an empty answer is the truth.
# ``token create -n`` names the new token.
NOT_A_REFERENCE = {("agent", "start"), ("agent", "stop"), ("agent", "status"), ("ls", "audit"),
                   ("token", "create")}  # fmt: skip


class Hung(BaseException):
    """A command ran past PATIENCE (a BaseException: main's catch-all must not take it)."""


def _hang(signum: int, frame: FrameType | None) -> None:
    raise Hung()


class Battery:
    """Runs ``flow ARGS`` in-process against the seeded home, putting the database back
    after any command that succeeded (it may have changed it)."""

    def __init__(self, seed: Path, db: Path, place: world.Place) -> None:
        self.seed, self.db, self.place = seed, db, place

    def __call__(self, *args: str) -> Any:
        from shellflow.commands import main

        class Main:
            name = "flow"

            def main(self, args: list[str], prog_name: str | None = None, **_: object) -> None:
                main(args)

        previous = signal.signal(signal.SIGALRM, _hang)
        signal.alarm(PATIENCE)
        try:
            result = CliRunner().invoke(Main(), list(args), input="")  # type: ignore[arg-type]
        except Hung:
            pytest.fail(f"flow {' '.join(map(repr, args))} still ran after {PATIENCE} s")
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        if result.exit_code == 0 and args[:1] not in (("ls",), ("config",)):
            world.fresh_copy(self.seed, self.db)
        return result


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database holding one object of each kind (built once per module)."""
    folder = tmp_path_factory.mktemp("seed")
    db = Path(templates.copy_sqlite(folder / "seed.db").removeprefix("sqlite:///"))
    from shellflow.commands import main

    for args in world.SEED:
        try:
            main(["--db", f"sqlite:///{db}", *args])
        except SystemExit as end:
            assert end.code == 0, args
    from shellflow.model.db import dispose_engines

    dispose_engines()
    return db


@pytest.fixture
def battery(
    seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> Iterator[Battery]:
    place = world.Place(tmp_path / "place")
    place.make()
    db = tmp_path / "model.db"
    world.fresh_copy(seeded, db)
    down = f"redis://127.0.0.1:{world.unused_port()}/0"
    monkeypatch.setenv("SHELLFLOW_DB", f"sqlite:///{db}")
    for key in ("BROKER", "BACKEND", "PUBSUB"):
        monkeypatch.setenv(f"SHELLFLOW_{key}", down)
    monkeypatch.chdir(place.root)  # a command writing to '' or '.' writes here
    _nothing_long_lived(monkeypatch)
    yield Battery(seeded, db, place)
    from shellflow.model.db import dispose_engines

    dispose_engines()


def _nothing_long_lived(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one step of each long-lived command that would start it does nothing instead."""

    class Agent:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def run(self) -> None:
            pass

    monkeypatch.setattr("shellflow.engine.fleet.agent.Agent", Agent)
    monkeypatch.setattr("shellflow.engine.fleet.daemon.detach", lambda *a, **k: (0, "log"))
    monkeypatch.setattr("shellflow.engine.worker.runtime.serve", lambda *a, **k: None)
    monkeypatch.setattr(
        "shellflow.engine.transport.embedded_broker.ensure_running", lambda path: path
    )
    monkeypatch.setattr("shellflow.commands.tui.os.execve", lambda *a: None)


def broken_rules(result: Any) -> list[str]:
    """What is wrong with how the command ended, whatever its input."""
    wrong = []
    if result.exit_code not in TABLE:
        wrong.append(f"exit {result.exit_code} is not in the README's table")
    if result.exit_code != 0 and len(result.stderr.splitlines()) > 1:
        wrong.append("more than one line on stderr")
    if FORBIDDEN.search(result.stderr):
        wrong.append("a traceback, internal error or exception name")
    return wrong


def expected_code(path: tuple[str, ...], param: click.Parameter, value: str,
                  needed: bool) -> set[int] | None:  # fmt: skip
    """The codes a value that is wrong for this parameter must give (None: any code)."""
    kind = param.type
    usage = {2}
    if value in (world.NOT_UTF8, world.NUL):
        return usage
    if isinstance(kind, click.types.IntParamType):
        low = getattr(kind, "min", None)
        if value in ("", world.HUGE, "-" + world.HUGE, "nan", "1.5", "abc"):
            return usage
        return usage if value == "-1" and low is not None and low >= 0 else None
    if isinstance(kind, click.types.FloatParamType):
        return usage  # every hostile float is one: empty, negative, nan, infinite, garbage
    if isinstance(kind, (click.Choice, click.types.BoolParamType)):
        return usage
    if isinstance(kind, click.Path):
        if value in ("", str(world.Place(Path()).missing)) or not value:
            return usage
        return usage if value.endswith("no-such-file.yaml") and kind.exists else None
    if value == "" and (needed or param.required):
        return usage
    if value == world.NO_SUCH and path[:2] not in NOT_A_REFERENCE:
        verb = path[0]
        if param.name in REFERENCES or (param.name == "name" and verb != "add" and needed):
            return {3, 2}  # 2: should names grow stricter, a name may be refused as such
    return None


def _params(command: click.Command) -> list[click.Parameter]:
    return [
        p
        for p in command.params
        if not getattr(p, "is_flag", False) and p.name != "help" and p.expose_value
    ]


COMMANDS = sorted(world.commands())


@pytest.mark.parametrize(
    "path", [path for path, command in COMMANDS if _params(command)], ids="-".join
)
def test_every_hostile_value_of_every_option_ends_with_its_code(
    battery: Battery, path: tuple[str, ...]
) -> None:
    command = dict(COMMANDS)[path]
    base = world.base_args(path, command, battery.place)
    control = battery(*path, *world.render(command, base))
    assert control.exit_code in world.control_codes(path), (base, control.stderr)
    wrong: list[str] = []
    for param in _params(command):
        for value in world.hostile(param, battery.place):
            args = [*path, *world.render(command, base | {str(param.name): value})]
            result = battery(*args)
            problems = broken_rules(result)
            want = expected_code(path, param, value, str(param.name) in base)
            if want is not None and result.exit_code not in want:
                problems.append(f"exit {result.exit_code}, not {sorted(want)}")
            if problems:
                shown = " ".join(repr(a) if len(a) < 40 else repr(a[:20]) + "..." for a in args)
                wrong.append(f"flow {shown}: {'; '.join(problems)}: {result.stderr.strip()!r}")
    assert not wrong, "\n".join(wrong)


GLOBAL_TARGETS = [("ls", "queues"), ("task", "run", "-s", "s1"), ("listen", "-n", "p1")]


@pytest.mark.parametrize("option", ["--db", "--broker", "--backend", "--pubsub", "--ini"])
def test_every_hostile_value_of_a_global_option_ends_with_its_code(
    battery: Battery, option: str
) -> None:
    root_param = next(p for p in world.root.params if option in p.opts)
    wrong = []
    for value in world.hostile(root_param, battery.place):
        for target in GLOBAL_TARGETS:
            result = battery(option, value, *target)
            problems = broken_rules(result)
            if result.exit_code != 2:  # none of them is a URL nor a readable ini file
                problems.append(f"exit {result.exit_code}, not 2")
            if problems:
                wrong.append(f"flow {option} {value[:30]!r} {' '.join(target)}: "
                             f"{'; '.join(problems)}: {result.stderr.strip()!r}")  # fmt: skip
    assert not wrong, "\n".join(wrong)


# The issue's own cases, and their exact codes.
NAMED = [
    (["--broker", "xyz://a", "task", "run", "-s", "s1"], 2),
    (["--db", "nosuchscheme://x", "ls", "queues"], 2),
    (["--backend", "xyz://a", "task", "run", "-s", "s1"], 2),
    (["--pubsub", "xyz://a", "listen", "-n", "p1"], 2),
    (["--broker", "redis://127.0.0.1:99999/0", "task", "run", "-s", "s1"], 2),
    (["--broker", "redis://127.0.0.1:6379/notanumber", "task", "run", "-s", "s1"], 2),
    (["add", "processor", "-n", "x", "-m", "m", "-g", "g", "-c", world.HUGE], 2),
    (["add", "processor", "-n", "x", "-m", "m", "-g", ""], 2),
    (["add", "processor", "-n", "x", "-m", "", "-g", "g"], 2),
    (["add", "socket", "-n", "x", "-q", "", "-pn", "p1", "-t", "t"], 2),
    (["add", "socket", "-n", "x", "-q", "q1", "-pn", "p1", "-t", ""], 2),
    (["add", "queue", "-n", "x", "--expires", "-5"], 2),
    (["add", "queue", "-n", "x", "--message-ttl", world.HUGE], 2),
    (["listen", "-n", "NO_SUCH_PROCESSOR"], 3),
    (["listen", "-n", "p1", "--since", "nan"], 2),
    (["listen", "-n", "p1", "--since", "-15m"], 2),
    (["ls", "calls", "--since", "garbage"], 2),
    (["task", "run", "-s", "s1", "--timeout", "nan"], 2),
    (["task", "run", "-s", "s1", "--timeout", "-1"], 2),
    (["task", "result", world.MISSING_CALL, "--timeout", "inf"], 2),
    (["task", "run", "-s", "NO_SUCH"], 3),
    (["task", "run", "-s", "s1", "n:=" + "[" * 100_000], 2),  # past the JSON parser
    (["task", "run", "-s", "s1", "n:=" + "[1" * 100_000], 2),
    (["proc", "start", "-n", "NO_SUCH"], 3),
    (["listen", "-n", "p1", "--since", "99999999999999999999d"], 2),
    (["listen", "-n", "global", "-c", "no_such_channel"], 2),
    (["ls", "calls", "--since", "15m"], 0),
    (["ls", "calls", "--since", "99999999999999999999d"], 2),
    (["ls", "calls", "--state", "no_such_state"], 2),
    (["ls", "calls", "--socket", "NO_SUCH"], 3),
    (["ls", "calls", "--socket", "s1"], 0),
    (["update", "processor", "-n", "p1", "-a", ""], 2),
    (["add", "processor", "-n", "x", "-m", "m", "-g", "g", "--max-workers", "2"], 2),
    (["update", "processor", "-n", "p1", "--min-workers", "2", "--max-workers", "1"], 2),
    (["update", "processor", "-n", "p1", "--min-workers", "1", "--max-workers", "9"], 2),
    (["-i", "x" * 5000, "ls", "queues"], 2),
    (["worker", "start", "-n", "p1", "--loglevel", "LOUD"], 2),
    (["delete", "privilege", "-n", "READ", "-u", "u1", "-r", ""], 2),
    (["update", "node", "-n", "n1", "--network", ""], 2),
    (["task", "run", "-s", "s1", "--flow", "f" * 37], 2),
    (["tui", "--channel", "global", "--channel", "NO_SUCH.log"], 3),
    (["tui", "--channel", "p1.log", "--channel", "p1"], 0),
    (["task", "result", "not-a-call-id"], 2),
    (["--pubsub", "amqp://g:g@127.0.0.1:1//", "listen", "-n", "p1"], 2),
    (["ls", "calls", "-r", "0"], 2),
    (["ls", "calls", "-p", world.HUGE], 2),
]


@pytest.mark.parametrize(
    ("args", "code"), NAMED, ids=lambda v: " ".join(v)[:50] if isinstance(v, list) else str(v)
)
def test_the_issues_typed_mistakes_end_with_their_codes(
    battery: Battery, args: list[str], code: int
) -> None:
    result = battery(*args)
    assert (result.exit_code, broken_rules(result)) == (code, []), result.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["compose", "up", "{folder}"], 2),
        (["compose", "up", "{missing}"], 2),
        (["compose", "diff", "{not_utf8}"], 2),
        (["-i", "{folder}", "ls", "queues"], 2),
        (["-i", "{not_utf8}", "ls", "queues"], 2),
    ],
)
def test_files_that_cannot_be_read_are_usage_errors(
    battery: Battery, args: list[str], code: int
) -> None:
    place = battery.place
    args = [a.format(folder=place.folder, missing=place.missing, not_utf8=place.not_utf8)
            for a in args]  # fmt: skip
    result = battery(*args)
    assert (result.exit_code, broken_rules(result)) == (code, []), result.stderr


def test_bytes_that_are_not_utf8_in_a_real_argv_are_one_usage_line(tmp_path: Path) -> None:
    """As a shell passes them (no in-process shortcut): exit 2, one line naming the option
    and the first bad byte."""
    import os
    import subprocess

    from tests.conftest import _flow_executable

    proc = subprocess.run(
        [*_flow_executable(), "ls", "queue", "-n", b"caf\xe9"],
        capture_output=True,
        timeout=60,
        env={**os.environ, "SHELLFLOW_DB": f"sqlite:///{tmp_path / 'none.db'}"},
    )
    lines = proc.stderr.decode().splitlines()
    assert (proc.returncode, len(lines)) == (2, 1), proc.stderr
    assert lines[0].startswith("flow: -n: not UTF-8 text at byte 4 (0xe9)"), lines[0]


def test_a_number_past_its_column_is_refused_on_every_path_to_the_store(
    battery: Battery,
) -> None:
    """The CLI bounds its options; the store bounds what compose and the Python API send."""
    from shellflow.errors import UsageError
    from shellflow.model.checks import check_integers
    from shellflow.model.network import Processor

    check_integers("processor", Processor, {"concurrency": 2**31 - 1})
    with pytest.raises(UsageError, match="concurrency 2147483648 is out of range"):
        check_integers("processor", Processor, {"concurrency": 2**31})
    compose = battery.place.root / "huge.yaml"
    huge = f"hostname: h1, concurrency: {world.HUGE}"
    compose.write_text(world.COMPOSE.replace("hostname: h1", huge))
    result = battery("compose", "up", str(compose))
    assert (result.exit_code, broken_rules(result)) == (2, []), result.stderr
    assert "concurrency" in result.stderr and "out of range" in result.stderr


@pytest.mark.parametrize("key", ["DB", "BROKER", "BACKEND", "PUBSUB"])
def test_a_bad_url_from_the_environment_or_the_ini_file_says_where_it_came_from(
    battery: Battery, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv(f"SHELLFLOW_{key}", "xyz://a")
    result = battery("ls", "queues")
    assert (result.exit_code, broken_rules(result)) == (2, []), result.stderr
    assert f"env SHELLFLOW_{key}" in result.stderr
    monkeypatch.delenv(f"SHELLFLOW_{key}")
    ini = battery.place.root / "bad.ini"
    scheme = "postgresql" if key == "DB" else "redis"
    ini.write_text(f"[shellflow]\n{key.lower()} = {scheme}://h:99999/0\n")
    result = battery("-i", str(ini), "ls", "queues")
    assert (result.exit_code, broken_rules(result)) == (2, []), result.stderr
    assert f"ini {ini}" in result.stderr and "Port out of range" in result.stderr
    shown = battery("-i", str(ini), "config", "show")  # still shown, so it can be mended
    assert shown.exit_code == 0, shown.stderr


def test_a_password_on_stdin_that_is_not_utf8_is_one_usage_line(tmp_path: Path) -> None:
    import os
    import subprocess

    from tests.conftest import _flow_executable

    db = templates.copy_sqlite(tmp_path / "model.db")
    proc = subprocess.run(
        [*_flow_executable(), "add", "user", "-n", "u9", "-e", "u9@example.org",
         "--password-stdin"],
        input=b"caf\xe9\n", capture_output=True, timeout=60,
        env={**os.environ, "SHELLFLOW_DB": db},
    )  # fmt: skip
    lines = proc.stderr.decode().splitlines()
    assert (proc.returncode, len(lines)) == (2, 1), proc.stderr
    assert "not UTF-8" in lines[0]


def test_a_home_or_url_in_another_encoding_is_one_usage_line_naming_it(
    battery: Battery, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHELLFLOW_DB")  # the default database is under the home
    monkeypatch.setenv("SHELLFLOW_HOME", world.NOT_UTF8)
    result = battery("ls", "queues")
    assert (result.exit_code, broken_rules(result)) == (2, []), result.stderr
    assert "caf\\xe9" in result.stderr and "SHELLFLOW_HOME" in result.stderr
    monkeypatch.delenv("SHELLFLOW_HOME")
    monkeypatch.setenv("SHELLFLOW_DB", "sqlite:///" + world.NOT_UTF8)
    result = battery("ls", "queues")
    assert (result.exit_code, broken_rules(result)) == (2, []), result.stderr
    assert "caf\\xe9" in result.stderr and "not UTF-8" in result.stderr
