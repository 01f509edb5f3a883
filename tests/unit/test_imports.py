"""Import hygiene: the CLI starts without its heavy libraries, and dependencies point one way.

The start-up checks run a fresh interpreter (this test process has imported everything
already) and look at ``sys.modules`` when it exits. The arrows of DESIGN.md are checked by
reading the source with ``ast``, so an import hidden inside a function counts too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "shellflow"
HEAVY = ("celery", "sqlalchemy", "sqlalchemy.orm", "textual", "redis", "git", "alembic", "rich")

# Runs ``flow ARGS...`` as the console script does, then writes the loaded module names to
# the file named by the first argument (at exit, after main()'s sys.exit).
_PROBE = """
import atexit, sys
out = sys.argv[1]
def dump():
    with open(out, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
atexit.register(dump)
sys.argv = ["flow", *sys.argv[2:]]
from shellflow.commands import main
main()
"""


def _loaded(names: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        name for name in names if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


def modules_after(tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.txt"
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return set(out.read_text().split())


def test_importing_the_commands_loads_no_heavy_library(tmp_path: Path) -> None:
    code = "import sys, shellflow.commands; print('\\n'.join(sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    modules = set(proc.stdout.split())
    assert "shellflow.commands" in modules
    assert _loaded(modules, HEAVY) == []


def test_every_command_module_imports_lightly() -> None:
    """Heavy libraries are imported inside the commands that run, not by their modules.

    Modules named with a leading underscore (``_store``: the bridge to the ORM) are exempt.
    """
    code = (
        "import importlib, pkgutil, sys, shellflow.commands as c\n"
        "names = [m.name for m in pkgutil.iter_modules(c.__path__) if not m.name.startswith('_')]\n"
        "for name in names: importlib.import_module('shellflow.commands.' + name)\n"
        "print(' '.join(names)); print('\\n'.join(sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    names, _, loaded = proc.stdout.partition("\n")
    assert {"objects", "db", "config_cmd"} <= set(names.split())
    assert _loaded(set(loaded.split()), (*HEAVY, "kombu")) == []


@pytest.mark.parametrize("args", [["--help"], ["--version"], []], ids=["help", "version", "bare"])
def test_help_and_version_load_no_heavy_library(tmp_path: Path, args: list[str]) -> None:
    modules = modules_after(tmp_path, *args)
    assert "click" in modules  # the probe did run the CLI
    assert _loaded(modules, HEAVY) == []


def test_help_loads_no_command_group(tmp_path: Path) -> None:
    """``flow --help`` lists the groups from a table; their modules stay unread.

    ``commands.params`` (the option types the global flags use; it imports only click and
    the standard library) is the one module of the package the root group needs."""
    modules = modules_after(tmp_path, "--help")
    shared = {"shellflow.commands.params"}
    groups = sorted(m for m in modules if m.startswith("shellflow.commands.") and m not in shared)
    assert groups == []


def test_the_one_shot_publish_path_loads_no_messaging_library() -> None:
    """A cold ``flow task run`` on plain ``amqp://`` and Redis results builds its message,
    picks the wire transport and decodes its result without Celery, kombu or redis-py."""
    code = (
        "import sys, types\n"
        "from shellflow.client import oneshot\n"
        "from shellflow.engine.calls.result_meta import decode, value_of\n"
        "from shellflow.engine.transport import resultwire\n"
        "from shellflow.engine.transport.message import OutgoingCall, build\n"
        "from shellflow.engine.transport.publisher import transport_for\n"
        "from shellflow.model.routes import SocketRoute\n"
        "route = SocketRoute('s', 'p', 'm', 'f', 'q', 'topic', True, 'started', 'started',"
        " 'i', 't')\n"
        "settings = types.SimpleNamespace(broker='amqp://guest:guest@127.0.0.1//')\n"
        "transport = transport_for(settings)\n"
        "assert type(transport).__name__ == 'WireTransport', transport\n"
        "message = build(OutgoingCall.make(route, [1], {}), transport.broker_url,"
        " transport.origin())\n"
        "message.encoded()\n"
        "assert value_of(decode('c', {'status': 'SUCCESS', 'result': 1})) == 1\n"
        "assert resultwire.handles('redis://127.0.0.1:6379/0')\n"
        "print('\\n'.join(sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert _loaded(set(proc.stdout.split()), ("celery", "kombu", "redis", "amqp")) == []


def test_listing_loads_no_sqlalchemy(tmp_path: Path, initialised_db: str) -> None:
    modules = modules_after(tmp_path, "ls", "queues")
    assert "shellflow.model.listing" in modules  # it did read the database
    assert _loaded(modules, ("sqlalchemy", "alembic", "celery", "textual", "rich")) == []


def test_lazy_help_matches_each_command() -> None:
    """The one-line help ``flow --help`` shows without importing equals the group's own."""
    import click

    from shellflow.commands import SUBCOMMANDS, cli

    ctx = click.Context(cli)
    for name, entry in SUBCOMMANDS.items():
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command), name
        assert command.get_short_help_str(limit=200) == entry.short_help, name


# -- dependency arrows (DESIGN.md) -------------------------------------------------------------


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """Every module a source file imports (absolute names), with its line."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            yield node.lineno, base
            for alias in node.names:  # ``from shellflow import commands`` names a module
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in ("import_module", "__import__") and isinstance(first, ast.Constant):
                yield node.lineno, str(first.value)


def violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for line, module in imports_of(path):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    return found


ARROWS = {
    "model": (
        "click", "celery", "kombu", "textual", "rich",
        "shellflow.commands", "shellflow.engine", "shellflow.tui", "shellflow.services",
        "shellflow.client",
    ),
    "commands": ("textual", "shellflow.tui"),
    "tui": ("click", "shellflow.commands"),
    "services": ("click", "textual", "shellflow.commands", "shellflow.tui"),
    "engine": (
        "click", "textual", "shellflow.commands", "shellflow.tui", "shellflow.services",
        "shellflow.client",
    ),
}  # fmt: skip


@pytest.mark.parametrize("folder", sorted(ARROWS))
def test_dependencies_point_one_way(folder: str) -> None:
    assert violations(folder, ARROWS[folder]) == []


def test_arrow_check_sees_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scanner itself finds plain, relative, from-package and importlib imports."""
    fake = tmp_path / "shellflow"
    (fake / "model").mkdir(parents=True)
    (fake / "model" / "bad.py").write_text(
        "import click\n"
        "def f():\n"
        "    from ..commands import objects\n"
        "    from shellflow import tui\n"
        "    import importlib\n"
        "    importlib.import_module('celery.app')\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    found = violations("model", ARROWS["model"])
    assert sorted(v.rpartition(" imports ")[2] for v in found) == [
        "celery.app",
        "click",
        "shellflow.commands",
        "shellflow.commands.objects",
        "shellflow.tui",
    ]
