"""Shell completion: the checked-in scripts, ``flow completion``, and database names.

The candidates are asked of ``flow`` the way the shells' scripts ask (``_FLOW_COMPLETE`` and
``COMP_WORDS`` in the environment of a fresh process), on SQLite and PostgreSQL. The shells
themselves run in tests/e2e/test_completion_shells.py.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import click
import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOW = Path(sys.executable).with_name("flow")


def gendocs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gendocs", ROOT / "tools" / "gendocs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def complete(*words: str, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(value, help) of each candidate for the last word, as zsh receives them."""
    proc = subprocess.run(
        [str(FLOW)],
        env={
            **os.environ,
            **(env or {}),
            "_FLOW_COMPLETE": "zsh_complete",
            "COMP_WORDS": " ".join(["flow", *words]),
            "COMP_CWORD": str(len(words)),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.rstrip("\n").split("\n") if proc.stdout.strip() else []
    triples = [lines[i : i + 3] for i in range(0, len(lines), 3)]
    return [(value, "" if help_ == "_" else help_) for _type, value, help_ in triples]


def values(*words: str, env: dict[str, str] | None = None) -> list[str]:
    return [value for value, _ in complete(*words, env=env)]


# -- the scripts ---------------------------------------------------------------------------


def test_checked_in_completion_scripts_are_current() -> None:
    docs = gendocs()
    stale = docs.stale(files=docs.completion_files())
    assert stale == [], f"stale completion scripts {stale}; regenerate with: {docs.REGENERATE}"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_every_hardening_patch_applies_to_clicks_script(shell: str) -> None:
    """If click changes its templates, this says which patch no longer applies."""
    from shellflow.commands.completion import click_source, harden

    hardened, missed = harden(shell, click_source(shell))
    assert missed == []
    assert "2>/dev/null" in hardened


def test_zsh_script_starts_with_compdef() -> None:
    from shellflow.commands.completion import script

    assert script("zsh").startswith("#compdef flow\n")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_prints_the_shipped_script(cli, shell: str) -> None:
    from shellflow.commands.completion import FILE_NAMES

    shipped = (ROOT / "completions" / FILE_NAMES[shell]).read_text(encoding="utf-8")
    assert cli.ok("completion", "show", shell).stdout == shipped


def test_show_refuses_an_unknown_shell(cli) -> None:
    result = cli("completion", "show", "tcsh")
    assert result.code == 2
    assert "tcsh" in result.stderr


def test_bash_completion_file_for_the_wheel_is_the_script() -> None:
    """share/bash-completion/completions/flow is installed from this link."""
    link = ROOT / "completions" / "bash-completion" / "flow"
    assert link.is_symlink()
    assert link.read_text() == (ROOT / "completions" / "flow.bash").read_text()


# -- flow completion install ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "where"),
    [
        ("bash", "xdg-data/bash-completion/completions/flow"),
        ("zsh", "xdg-data/zsh/site-functions/_flow"),
        ("fish", "xdg-config/fish/completions/flow.fish"),
    ],
)
def test_install_writes_where_the_shell_looks(cli, tmp_path: Path, shell: str, where: str) -> None:
    from shellflow.commands.completion import script

    result = cli.ok("completion", "install", shell)
    path = tmp_path / where
    assert result.stdout.strip() == str(path)
    assert path.read_text(encoding="utf-8") == script(shell)
    assert f"Installed the {shell} completion" in result.stderr


def test_install_follows_bash_completion_user_dir(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASH_COMPLETION_USER_DIR", str(tmp_path / "bc"))
    assert cli.ok("completion", "install", "bash").stdout.strip() == str(
        tmp_path / "bc" / "completions" / "flow"
    )


def test_install_takes_the_shell_from_SHELL(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHELL", "/usr/bin/fish")
    assert cli.ok("completion", "install").stdout.strip().endswith("fish/completions/flow.fish")
    monkeypatch.setenv("SHELL", "/bin/tcsh")
    result = cli("completion", "install")
    assert result.code == 2
    assert "flow completion install bash|zsh|fish" in result.stderr


def test_install_to_a_path(cli, tmp_path: Path) -> None:
    target = tmp_path / "here" / "flow.zsh"
    assert cli.ok("completion", "install", "zsh", "--path", str(target)).stdout.strip() == str(
        target
    )
    assert target.read_text().startswith("#compdef flow")


def test_install_failure_is_one_line(cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = cli("completion", "install", "bash", "--path", str(blocker / "sub" / "flow"))
    assert result.code == 1
    assert result.stderr.startswith("flow: cannot write ")
    assert len(result.stderr.strip().splitlines()) == 1


# -- names from the database ---------------------------------------------------------------


@pytest.fixture
def network(cli, initialised_db: str) -> str:
    """Two queues, a processor, three sockets, a plug, a node and agent, users and roles."""
    cli.ok("add", "queue", "-n", "pyfi.queue1", "-t", "direct")
    cli.ok("add", "queue", "-n", "other_q", "-t", "fanout")
    cli.ok("add", "processor", "-n", "proc1", "-g", "/repo", "-m", "pyfi.processors.sample",
           "-h", "localhost")  # fmt: skip
    for task in ("do_this", "do_that", "do_something"):
        cli.ok("add", "socket", "-n", f"pyfi.processors.sample.{task}", "-q", "pyfi.queue1",
               "-pn", "proc1", "-t", task)  # fmt: skip
    cli.ok("add", "plug", "-n", "this2that", "-q", "pyfi.queue1", "-s",
           "pyfi.processors.sample.do_this", "-t", "pyfi.processors.sample.do_that")  # fmt: skip
    cli.ok("add", "node", "-n", "node1", "-h", "host1")
    cli.ok("add", "agent", "-n", "agent1", "--node", "node1")
    cli.ok("add", "user", "-n", "alice", "-e", "alice@example.org", "--password-stdin",
           input="secret\n")  # fmt: skip
    cli.ok("add", "role", "-n", "admins")
    return initialised_db


T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _store_calls(url: str, count: int) -> list[str]:
    from shellflow.model.calls import Call
    from shellflow.model.db import session_scope

    ids = []
    with session_scope(url) as session:
        for n in range(count):
            call_id = f"{n:08d}-0000-4000-8000-000000000000"
            session.add(Call(id=call_id, name="pyfi.processors.sample.do_this",
                             state="finished" if n % 2 else "failed", tracking=f"{0:08d}-flow",
                             started=T0 + timedelta(seconds=n)))  # fmt: skip
            ids.append(call_id)
    return ids


def test_names_complete_by_prefix_with_descriptions(network: str) -> None:
    assert complete("ls", "socket", "-n", "pyfi.processors.sample.do_th") == [
        ("pyfi.processors.sample.do_that", "do_that of proc1, queue pyfi.queue1"),
        ("pyfi.processors.sample.do_this", "do_this of proc1, queue pyfi.queue1"),
    ]
    assert complete("add", "socket", "-q", "") == [
        ("other_q", "fanout queue"),
        ("pyfi.queue1", "direct queue"),
    ]
    assert complete("add", "socket", "-pn", "p") == [
        ("proc1", "pyfi.processors.sample, on localhost, ready")
    ]


def test_each_kind_completes_where_it_is_named(network: str) -> None:
    sockets = [f"pyfi.processors.sample.{t}" for t in ("do_something", "do_that", "do_this")]
    assert values("task", "run", "-s", "") == sockets
    assert values("task", "run", "--socket", "pyfi.processors.sample.do_s") == [sockets[0]]
    assert values("add", "plug", "-s", "") == sockets
    assert values("add", "plug", "-t", "pyfi.processors.sample.do_that") == [sockets[1]]
    assert values("add", "plug", "-q", "p") == ["pyfi.queue1"]
    assert values("ls", "calls", "--socket", "pyfi.processors.sample.do_thi") == [sockets[2]]
    assert values("update", "processor", "-n", "") == ["proc1"]
    assert values("delete", "plug", "-n", "t") == ["this2that"]
    assert values("ls", "plug", "-n", "") == ["this2that"]
    assert values("add", "agent", "--node", "") == ["node1"]
    assert values("ls", "node", "-n", "n") == ["node1"]
    assert complete("ls", "agent", "-n", "") == [("agent1", "on node node1, ready")]
    assert complete("update", "user", "-n", "a") == [("alice", "alice@example.org")]
    assert values("add", "privilege", "-n", "ADD_QUEUE", "-u", "") == ["alice"]
    assert values("add", "privilege", "-n", "ADD_QUEUE", "-r", "") == ["admins"]
    assert values("update", "user", "-n", "alice", "--add-role", "ad") == ["admins"]
    # A new object's name is not an existing one; choices still complete.
    assert values("add", "queue", "-n", "") == []
    assert values("add", "queue", "-t", "") == ["topic", "direct", "fanout"]
    assert values("delete", "privilege", "-n", "ADD_QU") == ["ADD_QUEUE"]


def test_every_kind_has_a_working_query(network: str) -> None:
    """Errors are swallowed at the prompt, so a broken query must show up here instead."""
    from shellflow.commands.complete import object_names, recent_calls
    from shellflow.model.listing import reader
    from shellflow.model.views import VIEWS

    with reader(network) as conn:
        found = {kind: [i.value for i in object_names(conn, kind, "")] for kind in VIEWS}
        assert recent_calls(conn, "") == []
        assert recent_calls(conn, "", column="tracking") == []
    assert found["plug"] == ["this2that"]
    assert found["user"] == ["alice"]
    assert found["role"] == ["admins"]
    assert found["privilege"] == []


def test_prefix_is_taken_literally(network: str) -> None:
    """LIKE's wildcards in what was typed match only themselves."""
    assert values("ls", "queue", "-n", "other_") == ["other_q"]
    assert values("ls", "queue", "-n", "other%") == []
    assert values("ls", "queue", "-n", "_") == []
    assert values("ls", "queue", "-n", "PYFI") == []  # completion extends what was typed


def test_recent_call_ids_newest_first(network: str) -> None:
    ids = _store_calls(network, 40)
    found = complete("ls", "call", "--id", "")
    assert [value for value, _ in found] == list(reversed(ids))[:30]
    assert found[0][1].startswith("pyfi.processors.sample.do_this, finished, 2026-01-02 03:04:44")
    assert values("ls", "call", "--id", "0000001") == list(reversed(ids[10:20]))
    assert values("task", "run", "-s", "x", "--flow", "") == ["00000000-flow"]
    assert values("ls", "calls", "--state", "f") == ["finished", "failed"]


def test_database_flag_on_the_line_is_used(network: str, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'none.db'}"
    assert values("--db", other, "ls", "queue", "-n", "") == []
    assert values("--db", network, "ls", "queue", "-n", "") == ["other_q", "pyfi.queue1"]


@pytest.mark.parametrize(
    "setup",
    ["missing sqlite file", "empty sqlite file", "unsupported url", "postgres port closed",
     "broken ini"],
)  # fmt: skip
def test_no_candidates_and_no_noise_on_any_error(tmp_path: Path, setup: str) -> None:
    env: dict[str, str] = {}
    if setup == "missing sqlite file":
        env["SHELLFLOW_DB"] = f"sqlite:///{tmp_path / 'nothing' / 'here.db'}"
    elif setup == "empty sqlite file":
        (tmp_path / "empty.db").write_bytes(b"")
        env["SHELLFLOW_DB"] = f"sqlite:///{tmp_path / 'empty.db'}"
    elif setup == "unsupported url":
        env["SHELLFLOW_DB"] = "mysql://u@localhost/x"
    elif setup == "postgres port closed":
        env["SHELLFLOW_DB"] = "postgresql://u:pw@127.0.0.1:1/x"
    else:
        (tmp_path / "bad.ini").write_text("not an ini file [[[\n")
        env["SHELLFLOW_INI"] = str(tmp_path / "bad.ini")
    for words in (
        ("ls", "socket", "-n", ""),
        ("ls", "call", "--id", ""),
        ("task", "run", "-s", ""),
    ):
        assert complete(*words, env=env) == []  # asserts an empty stderr and exit 0 too


def test_callbacks_swallow_unexpected_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from shellflow.commands import complete as comp

    def boom(_url: str) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(comp, "_open", boom)
    ctx = click.Context(click.Command("flow"))
    param = click.Option(["--x"])
    assert comp.names_of("queue")(ctx, param, "") == []
    assert comp.call_ids(ctx, param, "") == []
    assert comp.flow_ids(ctx, param, "") == []


def test_call_states_match_the_model() -> None:
    from shellflow.commands.complete import CALL_STATES
    from shellflow.model.calls import CALL_STATES as MODEL_STATES

    assert CALL_STATES == MODEL_STATES


def test_commands_and_options_complete_too(network: str) -> None:
    assert "completion" in values("")
    assert values("completion", "show", "") == ["bash", "zsh", "fish"]
    assert ("--socket", "Socket to call") in complete("task", "run", "--so")


# -- fast: the completion path loads no heavy library ---------------------------------------

_PROBE = """
import atexit, sys
out = sys.argv[1]
def dump():
    with open(out, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
atexit.register(dump)
sys.argv = ["flow"]
from shellflow.commands import main
main()
"""


def test_completion_reads_the_database_without_heavy_imports(network: str, tmp_path: Path) -> None:
    out = tmp_path / "modules.txt"
    env = {**os.environ, "_FLOW_COMPLETE": "bash_complete", "COMP_WORDS": "flow ls socket -n ",
           "COMP_CWORD": "4"}  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(out)], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "plain,pyfi.processors.sample.do_this" in proc.stdout.split("\n")
    modules = set(out.read_text().split())
    assert "shellflow.model.listing" in modules
    heavy = ("sqlalchemy", "alembic", "celery", "kombu", "redis", "textual", "rich", "git")
    assert sorted(m for m in modules if m.split(".")[0] in heavy) == []


def test_completion_gives_a_silent_server_less_time_than_a_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A TAB must answer: completion asks the light path for its shorter connect timeout."""
    import psycopg2

    from shellflow.commands import complete as comp
    from shellflow.model import listing

    asked: dict[str, object] = {}

    class Connection:
        def set_session(self, **_: object) -> None:
            pass

    def connect(dsn: str, **options: object) -> Connection:
        asked.update(options)
        return Connection()

    monkeypatch.setattr(psycopg2, "connect", connect)
    comp._open("postgresql://u@db.invalid/x")
    assert asked["connect_timeout"] == comp.CONNECT_TIMEOUT < listing.CONNECT_TIMEOUT
    listing.Reader("postgresql://u@db.invalid/x")
    assert asked["connect_timeout"] == listing.CONNECT_TIMEOUT
