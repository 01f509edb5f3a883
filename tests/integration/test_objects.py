"""``flow add | ls | update | delete KIND`` on SQLite and PostgreSQL (spec chapter 10)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from objects_support import (
    DO_SOMETHING,
    DO_THIS,
    MODULE,
    REPO,
    count,
    ls_json,
    names,
    quickstart,
    show,
    sql,
    wired,
)

from shellflow.commands.kinds import KIND_OPTIONS
from tests.engine.repos import git, new_repo

# -- the spec's quick start ---------------------------------------------------------------


def test_quickstart_lines_work_as_written(cli: Any, initialised_db: str) -> None:
    quickstart(cli)
    assert show(cli, "queue", "pyfi.queue1")["type"] == "direct"
    proc = show(cli, "processor", "proc1")
    assert (proc["module"], proc["gitrepo"], proc["hostname"]) == (MODULE, REPO, "localhost")
    assert proc["concurrency"] == 5  # -c is the CPU count, not the commit
    assert proc["commit"] is None
    assert [s["name"] for s in proc["sockets"]] == [DO_SOMETHING, DO_THIS]
    sock = show(cli, "socket", DO_THIS)
    assert (sock["processor"], sock["queue"], sock["task"], sock["module"]) == (
        "proc1", "pyfi.queue1", "do_this", MODULE,
    )  # fmt: skip


def test_commit_is_long_only_and_cpus_aliases(
    cli: Any, initialised_db: str, tmp_path: Path
) -> None:
    repo = new_repo(tmp_path / "repo", {"a.txt": "1\n"})  # a pinned commit must exist
    sha = git(repo, "rev-parse", "HEAD")[:10]
    cli.ok("add", "processor", "-n", "p", "-g", str(repo), "-m", MODULE, "--commit", sha,
           "-cs", "3")  # fmt: skip
    proc = show(cli, "processor", "p")
    assert (proc["commit"], proc["concurrency"]) == (sha, 3)
    bad = cli("add", "processor", "-n", "p2", "-g", REPO, "-m", MODULE, "-c", "0a1b2c")
    assert bad.code == 2
    assert "p2" not in names(cli, "processors")
    cli.ok("add", "processor", "-n", "p3", "-g", REPO, "-m", MODULE)
    assert show(cli, "processor", "p3")["concurrency"] == 1  # the default


def test_plug_line_as_written(cli: Any, initialised_db: str) -> None:
    quickstart(cli)
    cli.ok("add", "plug", "-n", "errs", "-q", "pyfi.queue1", "-s", DO_THIS, "-t", DO_SOMETHING,
           "--type", "ERROR")  # fmt: skip
    cli.ok("add", "plug", "-n", "res", "-q", "pyfi.queue1", "-s", DO_SOMETHING, "-t", DO_THIS,
           "-a", "data")  # fmt: skip
    errs, res = ls_json(cli, "plugs")
    assert errs == {"name": "errs", "type": "ERROR", "source": DO_THIS, "target": DO_SOMETHING,
                    "argument": None, "queue": "pyfi.queue1", "processor": "proc1"}  # fmt: skip
    assert (res["type"], res["argument"]) == ("RESULT", "data")
    # The argument a plug feeds exists on the target's task.
    assert [(a["name"], a["task"]) for a in ls_json(cli, "arguments")] == [("data", DO_THIS)]
    loop = cli("add", "plug", "-n", "loop", "-q", "pyfi.queue1", "-s", DO_THIS, "-t", DO_THIS)
    assert loop.code == 2
    assert names(cli, "plugs") == ["errs", "res"]


# -- every kind: add, ls, update, rename, delete ------------------------------------------

# kind -> (add options after -n, fields expected after add, update options, fields after)
LIFECYCLE: dict[str, tuple[list[str], dict[str, Any], list[str], dict[str, Any]]] = {
    "queue": (["-t", "topic"], {"type": "topic", "durable": True},
              ["-t", "fanout", "--message-ttl", "500", "--transient"],
              {"type": "fanout", "message_ttl": 500, "durable": False}),
    "processor": (["-g", REPO, "-m", "mod.x", "-c", "2"], {"concurrency": 2, "module": "mod.x"},
                  ["-c", "4", "-br", "dev", "-rs", "paused"],  # --commit: test_repos_allow
                  {"concurrency": 4, "branch": "dev",
                   "requested_status": "paused"}),
    "socket": (["-q", "pyfi.queue1", "-pn", "proc1", "-t", "fx"],
               {"task": "fx", "processor": "proc1", "queue": "pyfi.queue1", "interval": None},
               ["-i", "30", "--wait", "-q", "q2"], {"interval": 30, "wait": True, "queue": "q2"}),
    "plug": (["-q", "pyfi.queue1", "-s", DO_SOMETHING, "-t", DO_THIS],
             {"source": DO_SOMETHING, "target": DO_THIS, "type": "RESULT"},
             ["--type", "error", "-q", "q2"], {"type": "ERROR", "queue": "q2"}),
    "node": (["-h", "hx", "-c", "4", "--network", "net1"], {"cpus": 4, "network": "net1"},
             ["-c", "8", "--scheduler", "sch1"], {"cpus": 8, "scheduler": "sch1"}),
    "agent": (["--node", "node1", "-h", "hx", "-c", "2"], {"node": "node1", "cpus": 2},
              ["-c", "3", "-h", "hy"], {"cpus": 3, "hostname": "hy"}),
    "scheduler": (["-s", "EFFICIENT"], {"strategy": "EFFICIENT", "interval": None},
                  ["-i", "60", "-s", "BALANCED"], {"interval": 60, "strategy": "BALANCED"}),
    "deployment": (["-pn", "proc1", "-h", "h1"], {"processor": "proc1", "cpus": 1},
                   ["-c", "3", "-h", "h2"], {"cpus": 3, "hostname": "h2"}),
    "network": ([], {}, [], {}),
    "user": (["-e", "x@example.org", "-p", "pw"], {"email": "x@example.org"},
             ["-e", "y@example.org"], {"email": "y@example.org"}),
    "role": ([], {}, [], {}),
}  # fmt: skip


@pytest.fixture
def world(cli: Any, initialised_db: str) -> str:
    """Objects the lifecycle cases refer to."""
    quickstart(cli)
    cli.ok("add", "queue", "-n", "q2")
    cli.ok("add", "network", "-n", "net1")
    cli.ok("add", "scheduler", "-n", "sch1")
    cli.ok("add", "node", "-n", "node1")
    return initialised_db


def test_lifecycle_covers_every_kind() -> None:
    special = {"argument", "privilege"}  # identified by more than a name: tested apart
    assert set(LIFECYCLE) | special == set(KIND_OPTIONS)


@pytest.mark.parametrize("kind", sorted(LIFECYCLE))
def test_add_ls_update_rename_delete(cli: Any, world: str, kind: str) -> None:
    add_opts, after_add, update_opts, after_update = LIFECYCLE[kind]
    plural = kind + "s"
    cli.ok("add", kind, "-n", "obj", *add_opts)
    obj = show(cli, kind, "obj")
    assert obj["name"] == "obj"
    assert obj | after_add == obj, obj
    assert "obj" in names(cli, kind) and "obj" in names(cli, plural)
    assert ls_json(cli, kind) == ls_json(cli, plural)
    assert show(cli, plural, "obj") == obj

    if update_opts:
        cli.ok("update", kind, "-n", "obj", *update_opts)
        obj = show(cli, kind, "obj")
        assert obj | after_update == obj, obj

    cli.ok("update", kind, "-n", "obj", "--rename", "obj2")
    assert cli("ls", kind, "-n", "obj").code == 3
    assert show(cli, kind, "obj2") | after_update == show(cli, kind, "obj2")

    cli.ok("delete", kind, "-n", "obj2")
    assert cli("ls", kind, "-n", "obj2").code == 3
    assert "obj2" not in names(cli, plural)


def test_duplicate_names_exit_4_and_keep_the_first(cli: Any, world: str) -> None:
    for kind, (add_opts, *_) in sorted(LIFECYCLE.items()):
        first = ["-e", "first@example.org", "-p", "pw"] if kind == "user" else add_opts
        cli.ok("add", kind, "-n", "obj", *first)
        before = show(cli, kind, "obj")
        again = cli("add", kind, "-n", "obj", *add_opts)
        assert again.code == 4, kind
        assert "'obj'" in again.stderr and len(again.stderr.strip().splitlines()) == 1, kind
        assert show(cli, kind, "obj") == before
        assert names(cli, kind).count("obj") == 1


def test_rename_onto_an_existing_name_exits_4(cli: Any, world: str) -> None:
    cli.ok("add", "node", "-n", "node2")
    for kind, (add_opts, *_) in sorted(LIFECYCLE.items()):
        cli.ok("add", kind, "-n", "one", *add_opts)
        second = {"user": ["-e", "two@example.org", "-p", "pw"], "agent": ["--node", "node2"]}
        cli.ok("add", kind, "-n", "two", *second.get(kind, add_opts))
        result = cli("update", kind, "-n", "one", "--rename", "two")
        assert result.code == 4, kind
        assert {"one", "two"} <= set(names(cli, kind))


# -- listing formats ----------------------------------------------------------------------


def test_ls_json_is_ndjson_and_piped_ls_is_tsv(cli: Any, initialised_db: str) -> None:
    wired(cli)
    lines = cli.ok("ls", "sockets", "--json").stdout.splitlines()
    assert len(lines) == 2
    rows = [json.loads(line) for line in lines]
    assert [r["name"] for r in rows] == [DO_SOMETHING, DO_THIS]

    tsv = cli.ok("ls", "sockets").stdout.splitlines()  # the in-process runner is not a TTY
    assert len(tsv) == 2  # no header line
    cells = [line.split("\t") for line in tsv]
    assert [c[0] for c in cells] == [DO_SOMETHING, DO_THIS]
    assert cells[1][:4] == [DO_THIS, "proc1", "pyfi.queue1", "do_this"]
    assert all(len(c) == len(cells[0]) for c in cells)
    assert "{" not in cli.ok("ls", "queues").stdout


def test_ls_of_an_empty_kind_prints_nothing(cli: Any, initialised_db: str) -> None:
    for kind in ("queues", "processors", "sockets", "plugs", "arguments", "users", "privileges"):
        assert cli.ok("ls", kind).stdout == ""
        assert cli.ok("ls", kind, "--json").stdout == ""


def test_ls_socket_shows_processor_queue_task_and_plugs(cli: Any, initialised_db: str) -> None:
    wired(cli)
    cli.ok("add", "socket", "-n", "after", "-q", "pyfi.queue1", "-pn", "proc1", "-t", "after")
    cli.ok("add", "plug", "-n", "plug2", "-q", "pyfi.queue1", "-s", DO_THIS, "-t", "after",
           "--type", "ERROR")  # fmt: skip
    sock = show(cli, "socket", DO_THIS)
    assert (sock["processor"], sock["queue"], sock["task"]) == ("proc1", "pyfi.queue1", "do_this")
    assert sock["plugs"] == [
        {"name": "plug1", "direction": "in", "type": "RESULT", "socket": DO_SOMETHING,
         "argument": "data", "queue": "pyfi.queue1"},
        {"name": "plug2", "direction": "out", "type": "ERROR", "socket": "after",
         "argument": None, "queue": "pyfi.queue1"},
    ]  # fmt: skip
    # Piped without --json: one "key<TAB>value" line per field.
    lines = dict(line.split("\t", 1) for line in cli.ok("ls", "socket", "-n", DO_THIS).stdout
                 .splitlines())  # fmt: skip
    assert (lines["processor"], lines["queue"], lines["task"]) == (
        "proc1",
        "pyfi.queue1",
        "do_this",
    )
    assert "plug1" in lines["plugs"] and "plug2" in lines["plugs"]


def test_add_json_prints_the_new_object(cli: Any, initialised_db: str) -> None:
    quickstart(cli)
    out = cli.ok("add", "queue", "-n", "q9", "-t", "fanout", "--json").stdout
    assert json.loads(out)["type"] == "fanout"
    # Arguments are per task: the JSON is the argument just added, not a namesake.
    cli.ok("add", "argument", "-n", "one", "-s", DO_THIS)
    out = cli.ok("add", "argument", "-n", "one", "-s", DO_SOMETHING, "--json").stdout
    assert json.loads(out)["task"] == DO_SOMETHING


def test_ls_on_a_terminal_is_a_table(
    cli: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shellflow.commands import output

    quickstart(cli)
    monkeypatch.setattr(output, "stdout_is_tty", lambda: True)
    monkeypatch.setenv("COLUMNS", "240")
    table = cli.ok("ls", "processors").stdout
    assert "name" in table and "concurrency" in table  # a header, unlike piped output
    assert "proc1" in table and "\t" not in table


def test_socket_schedule_is_an_interval_or_a_cron_line(cli: Any, initialised_db: str) -> None:
    quickstart(cli)
    both = cli("update", "socket", "-n", DO_THIS, "-i", "5", "--cron", "* * * * *")
    assert both.code == 2
    assert cli("update", "socket", "-n", DO_THIS, "--cron", "every minute").code == 2
    cli.ok("update", "socket", "-n", DO_THIS, "-i", "5")
    assert (show(cli, "socket", DO_THIS)["interval"], show(cli, "socket", DO_THIS)["cron"]) == (
        5, None,
    )  # fmt: skip
    cli.ok("update", "socket", "-n", DO_THIS, "--cron", "*/5 * * * *")
    sock = show(cli, "socket", DO_THIS)
    assert (sock["interval"], sock["cron"]) == (None, "*/5 * * * *")
    kinds = sql(initialised_db, "SELECT schedule_type, scheduled FROM socket WHERE name = :n",
                n=DO_THIS)  # fmt: skip
    assert [(k, bool(on)) for k, on in kinds] == [("CRON", True)]


# -- errors -------------------------------------------------------------------------------


def test_unknown_names_exit_3_with_suggestions(cli: Any, initialised_db: str) -> None:
    quickstart(cli)
    for args in (
        ("ls", "processor", "-n", "proc2"),
        ("update", "processor", "-n", "proc2", "-c", "2"),
        ("delete", "processor", "-n", "proc2"),
        ("add", "socket", "-n", "s", "-q", "pyfi.queue1", "-pn", "proc2", "-t", "f"),
        ("add", "deployment", "-n", "d", "-pn", "proc2", "-h", "h"),
    ):
        result = cli(*args)
        assert result.code == 3, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "'proc2'" in lines[0] and "did you mean 'proc1'" in lines[0], lines[0]
        assert "Traceback" not in result.stderr
    far = cli("ls", "queue", "-n", "zzzz")
    assert far.code == 3
    assert "'zzzz'" in far.stderr and "did you mean" not in far.stderr


# A complete ``flow add KIND`` line for each kind: the test drops one required option.
COMPLETE = {
    "queue": ["-n", "x"],
    "processor": ["-n", "x", "-m", "m", "-g", REPO],
    "socket": ["-n", "x", "-q", "pyfi.queue1", "-pn", "proc1", "-t", "f"],
    "plug": ["-n", "x", "-q", "pyfi.queue1", "-s", DO_SOMETHING, "-t", DO_THIS],
    "argument": ["-n", "x", "-s", DO_THIS],
    "node": ["-n", "x"],
    "agent": ["-n", "x", "--node", "node1"],
    "scheduler": ["-n", "x"],
    "deployment": ["-n", "x", "-pn", "proc1", "-h", "h"],
    "network": ["-n", "x"],
    "user": ["-n", "x", "-e", "x@example.org", "-p", "pw"],
    "role": ["-n", "x"],
    "privilege": ["-n", "ALL", "-u", "nobody"],
}


def test_missing_required_option_without_a_terminal_exits_2(cli: Any, world: str) -> None:
    required = [(k, o.decls[0]) for k, opts in KIND_OPTIONS.items() for o in opts if o.required]
    assert len(required) > len(KIND_OPTIONS)
    for kind, flag in required:
        full = COMPLETE[kind]
        i = full.index(flag)
        result = cli("add", kind, *full[:i], *full[i + 2 :])
        assert result.code == 2, (kind, flag, result.stderr)
        assert flag in result.stderr, (kind, flag, result.stderr)
    for kind in ("queue", "processor", "socket", "plug", "user", "deployment"):
        assert "x" not in names(cli, kind)


def test_names_must_be_printable_and_fit_on_both_databases(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "queue", "-n", "q")
    for args in (
        ("add", "queue", "-n", ""),
        ("add", "queue", "-n", "   "),
        ("add", "queue", "-n", "tab\there"),
        ("add", "queue", "-n", "x" * 201),
        ("update", "queue", "-n", "q", "--rename", "line\nbreak"),
        ("add", "processor", "-n", "p", "-g", REPO, "-m", MODULE, "-h", "h" * 201),
    ):
        result = cli(*args)
        assert result.code == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
        if "x" * 201 in args:  # the same answer on SQLite, which would store it whole
            assert "does not fit" in result.stderr
    assert names(cli, "queues") == ["q"]
    assert names(cli, "processors") == []
    cli.ok("add", "queue", "-n", "x" * 200)  # the longest name that fits
    # A task is named module.function: that name must fit too.
    cli.ok("add", "processor", "-n", "p", "-g", REPO, "-m", "m" * 195)
    long_task = cli("add", "socket", "-n", "s", "-q", "q", "-pn", "p", "-t", "function")
    assert long_task.code == 2
    assert names(cli, "sockets") == []


def test_unknown_reference_leaves_no_socket_and_no_task(cli: Any, initialised_db: str) -> None:
    quickstart(cli)
    tasks = count(initialised_db, "task")
    result = cli("add", "socket", "-n", "s3", "-q", "no.such.queue", "-pn", "proc1", "-t", "new")
    assert result.code == 3
    assert "s3" not in names(cli, "sockets")
    assert count(initialised_db, "task") == tasks
    assert count(initialised_db, "socket") == 2


def test_failed_update_keeps_the_old_values(cli: Any, initialised_db: str) -> None:
    quickstart(cli)
    cli.ok("add", "processor", "-n", "proc2", "-g", REPO, "-m", "other")
    before = show(cli, "processor", "proc1")
    assert cli("update", "processor", "-n", "proc1", "-c", "9", "--rename", "proc2").code == 4
    assert cli("update", "processor", "-n", "proc1").code == 2  # nothing to change
    assert show(cli, "processor", "proc1") == before

    sock = show(cli, "socket", DO_THIS)
    result = cli("update", "socket", "-n", DO_THIS, "-i", "5", "-q", "no.such.queue")
    assert result.code == 3
    assert show(cli, "socket", DO_THIS) == sock
    assert sql(initialised_db, "SELECT interval, schedule_type FROM socket WHERE name = :n",
               n=DO_THIS) == [(None, None)]  # fmt: skip


def test_not_initialised_database_is_a_service_error(cli: Any, db_url: str) -> None:
    result = cli("add", "queue", "-n", "q")
    assert result.code == 6
    assert "flow db init" in result.stderr


# -- deleting with dependents -------------------------------------------------------------


def test_delete_processor_refuses_naming_dependents(cli: Any, initialised_db: str) -> None:
    wired(cli)
    cli.ok("add", "deployment", "-n", "dep1", "-pn", "proc1", "-h", "h1")
    result = cli("delete", "processor", "-n", "proc1")
    assert result.code == 4
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    for dependent in (DO_SOMETHING, DO_THIS, "plug1", "dep1", "--cascade"):
        assert dependent in message, message
    assert names(cli, "processors") == ["proc1"]
    assert len(ls_json(cli, "sockets")) == 2 and len(ls_json(cli, "plugs")) == 1


def test_delete_processor_cascade_deletes_dependents(cli: Any, initialised_db: str) -> None:
    wired(cli)
    cli.ok("add", "processor", "-n", "keep", "-g", REPO, "-m", "keep.mod")
    cli.ok("add", "socket", "-n", "kept", "-q", "pyfi.queue1", "-pn", "keep", "-t", "f")
    cli.ok("add", "deployment", "-n", "dep1", "-pn", "proc1", "-h", "h1")
    cli.ok("update", "processor", "-n", "proc1", "-p", "secret")
    result = cli.ok("delete", "processor", "-n", "proc1", "--cascade")
    for deleted in (DO_SOMETHING, DO_THIS, "plug1", "dep1", "proc1"):
        assert deleted in result.stderr
    assert result.stdout == ""
    assert names(cli, "processors") == ["keep"]
    assert names(cli, "sockets") == ["kept"]
    assert ls_json(cli, "plugs") == [] and ls_json(cli, "deployments") == []
    assert count(initialised_db, "passwords") == 0  # its password hash went with it


def test_delete_queue_refuses_then_cascades(cli: Any, initialised_db: str) -> None:
    wired(cli)
    cli.ok("add", "queue", "-n", "q2")
    cli.ok("add", "socket", "-n", "other", "-q", "q2", "-pn", "proc1", "-t", "other")
    result = cli("delete", "queue", "-n", "pyfi.queue1")
    assert result.code == 4
    assert all(n in result.stderr for n in (DO_SOMETHING, DO_THIS, "plug1"))
    assert "pyfi.queue1" in names(cli, "queues")
    cli.ok("delete", "queue", "-n", "pyfi.queue1", "--cascade")
    assert names(cli, "queues") == ["q2"]
    assert names(cli, "sockets") == ["other"]
    assert ls_json(cli, "plugs") == []
    assert names(cli, "processors") == ["proc1"]


def test_delete_socket_refuses_while_plugged_then_cascades(cli: Any, initialised_db: str) -> None:
    wired(cli)
    for socket in (DO_SOMETHING, DO_THIS):  # the plug's source and its target
        result = cli("delete", "socket", "-n", socket)
        assert result.code == 4
        assert "plug1" in result.stderr
    assert len(ls_json(cli, "sockets")) == 2
    cli.ok("delete", "socket", "-n", DO_THIS, "--cascade")
    assert names(cli, "sockets") == [DO_SOMETHING]
    assert ls_json(cli, "plugs") == []


def test_delete_plug_leaves_its_sockets(cli: Any, initialised_db: str) -> None:
    wired(cli)
    cli.ok("delete", "plug", "-n", "plug1")
    assert ls_json(cli, "plugs") == []
    assert len(ls_json(cli, "sockets")) == 2
    assert show(cli, "socket", DO_THIS)["plugs"] == []


def test_delete_node_refuses_while_an_agent_runs_on_it(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "node", "-n", "n1")
    cli.ok("add", "agent", "-n", "a1", "--node", "n1")
    result = cli("delete", "node", "-n", "n1")
    assert result.code == 4 and "a1" in result.stderr
    cli.ok("delete", "node", "-n", "n1", "--cascade")
    assert ls_json(cli, "agents") == [] and ls_json(cli, "nodes") == []


def test_one_agent_per_node(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "node", "-n", "n1")
    cli.ok("add", "node", "-n", "n2")
    cli.ok("add", "agent", "-n", "a1", "--node", "n1")
    cli.ok("add", "agent", "-n", "a2", "--node", "n2")
    for args in (("add", "agent", "-n", "a3", "--node", "n1"),
                 ("update", "agent", "-n", "a2", "--node", "n1")):  # fmt: skip
        result = cli(*args)
        assert result.code == 4, args
        assert "n1" in result.stderr and "a1" in result.stderr, result.stderr
    assert [(a["name"], a["node"]) for a in ls_json(cli, "agents")] == [("a1", "n1"), ("a2", "n2")]


def test_deleting_a_scheduler_or_network_unlinks_its_members(cli: Any, initialised_db: str) -> None:
    cli.ok("add", "network", "-n", "net")
    cli.ok("add", "scheduler", "-n", "sch", "--network", "net")
    cli.ok("add", "node", "-n", "n1", "--scheduler", "sch", "--network", "net")
    cli.ok("add", "queue", "-n", "q", "--network", "net")
    net = show(cli, "network", "net")
    assert (net["queues"], net["nodes"], net["schedulers"]) == (["q"], ["n1"], ["sch"])
    assert show(cli, "scheduler", "sch")["nodes"] == ["n1"]
    cli.ok("delete", "scheduler", "-n", "sch")
    cli.ok("delete", "network", "-n", "net")
    node = show(cli, "node", "n1")
    assert (node["scheduler"], node["network"]) == (None, None)
    assert show(cli, "queue", "q")["network"] is None


# -- arguments: unique per task -----------------------------------------------------------


def test_arguments_are_unique_per_task_not_globally(cli: Any, initialised_db: str) -> None:
    quickstart(cli)
    cli.ok("add", "argument", "-n", "one", "-s", DO_SOMETHING)
    cli.ok("add", "argument", "-n", "one", "-s", DO_THIS)
    cli.ok("add", "argument", "-n", "two", "-s", DO_THIS, "-p", "5")
    dup = cli("add", "argument", "-n", "one", "-s", DO_THIS)
    assert dup.code == 4
    rows = ls_json(cli, "arguments")
    assert [(r["name"], r["task"]) for r in rows] == [
        ("one", DO_SOMETHING), ("one", DO_THIS), ("two", DO_THIS)
    ]  # fmt: skip
    assert [r["position"] for r in rows] == [0, 0, 5]
    # -n filters the list (names repeat across tasks).
    one = [json.loads(x) for x in cli.ok("ls", "argument", "-n", "one", "--json").stdout.split()]
    assert [r["task"] for r in one] == [DO_SOMETHING, DO_THIS]
    missing = cli("ls", "argument", "-n", "twoo")
    assert missing.code == 3 and "did you mean 'two'" in missing.stderr
    # Sockets of one function share its task, so they share its arguments.
    cli.ok("add", "socket", "-n", "twin", "-q", "pyfi.queue1", "-pn", "proc1", "-t", "do_this")
    assert cli("add", "argument", "-n", "one", "-s", "twin").code == 4


def test_argument_update_and_delete_need_their_socket(cli: Any, initialised_db: str) -> None:
    quickstart(cli)
    cli.ok("add", "argument", "-n", "one", "-s", DO_SOMETHING)
    cli.ok("add", "argument", "-n", "one", "-s", DO_THIS)
    cli.ok("add", "argument", "-n", "two", "-s", DO_THIS)
    assert cli("update", "argument", "-n", "one", "-p", "3").code == 2
    assert cli("delete", "argument", "-n", "one").code == 2
    clash = cli("update", "argument", "-n", "one", "-s", DO_THIS, "--rename", "two")
    assert clash.code == 4 and "'two'" in clash.stderr
    cli.ok("update", "argument", "-n", "one", "-s", DO_THIS, "-p", "3", "--rename", "uno")
    rows = {(r["name"], r["task"]): r["position"] for r in ls_json(cli, "arguments")}
    assert rows == {("one", DO_SOMETHING): 0, ("uno", DO_THIS): 3, ("two", DO_THIS): 1}
    assert cli("delete", "argument", "-n", "one", "-s", "nosuch").code == 3
    assert cli("delete", "argument", "-n", "nine", "-s", DO_THIS).code == 3
    cli.ok("delete", "argument", "-n", "uno", "-s", DO_THIS)
    assert {(r["name"], r["task"]) for r in ls_json(cli, "arguments")} == {
        ("one", DO_SOMETHING), ("two", DO_THIS)
    }  # fmt: skip


def test_argument_fed_by_a_plug_is_not_deleted_silently(cli: Any, initialised_db: str) -> None:
    wired(cli)
    result = cli("delete", "argument", "-n", "data", "-s", DO_THIS)
    assert result.code == 4 and "plug1" in result.stderr
    cli.ok("delete", "argument", "-n", "data", "-s", DO_THIS, "--cascade")
    assert ls_json(cli, "plugs") == [] and ls_json(cli, "arguments") == []


# -- changing what a socket runs keeps its plugs consistent -------------------------------


def test_changing_a_sockets_task_moves_plugged_arguments(cli: Any, initialised_db: str) -> None:
    wired(cli)
    cli.ok("update", "socket", "-n", DO_THIS, "-t", "do_that")
    sock = show(cli, "socket", DO_THIS)
    assert sock["task"] == "do_that"
    # The plug still feeds the target's argument "data", now of the new task.
    args = {(a["name"], a["task"]) for a in ls_json(cli, "arguments")}
    assert ("data", f"{MODULE}.do_that") in args
    plug_arg = sql(initialised_db,
                   "SELECT t.name FROM plug p JOIN argument a ON a.id = p.argument_id"
                   " JOIN task t ON t.id = a.task_id")  # fmt: skip
    assert plug_arg == [(f"{MODULE}.do_that",)]


def test_changing_a_processors_module_moves_its_sockets(cli: Any, initialised_db: str) -> None:
    quickstart(cli)
    cli.ok("add", "socket", "-n", "twin", "-q", "pyfi.queue1", "-pn", "proc1", "-t", "do_this")
    cli.ok("update", "processor", "-n", "proc1", "-m", "other.module")
    for name, function in (
        (DO_SOMETHING, "do_something"),
        (DO_THIS, "do_this"),
        ("twin", "do_this"),
    ):
        sock = show(cli, "socket", name)
        assert (sock["module"], sock["task"]) == ("other.module", function)


def test_moving_a_socket_to_another_processor_uses_its_module(
    cli: Any, initialised_db: str
) -> None:
    quickstart(cli)
    cli.ok("add", "processor", "-n", "proc2", "-g", REPO, "-m", "other.module")
    cli.ok("update", "socket", "-n", DO_THIS, "-pn", "proc2")
    sock = show(cli, "socket", DO_THIS)
    assert (sock["processor"], sock["module"], sock["task"]) == ("proc2", "other.module", "do_this")
    assert [s["name"] for s in show(cli, "processor", "proc2")["sockets"]] == [DO_THIS]


def test_changing_a_plugs_target_moves_its_argument(cli: Any, initialised_db: str) -> None:
    wired(cli)
    cli.ok("add", "socket", "-n", "third", "-q", "pyfi.queue1", "-pn", "proc1", "-t", "third")
    cli.ok("update", "plug", "-n", "plug1", "-t", "third")
    plug = show(cli, "plug", "plug1")
    assert (plug["target"], plug["argument"]) == ("third", "data")
    plug_arg = sql(initialised_db,
                   "SELECT t.name FROM plug p JOIN argument a ON a.id = p.argument_id"
                   " JOIN task t ON t.id = a.task_id")  # fmt: skip
    assert plug_arg == [(f"{MODULE}.third",)]


# -- timestamps ---------------------------------------------------------------------------


def test_timestamps_are_utc_and_agree_with_the_orm(
    cli: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time
    from datetime import UTC, datetime

    from shellflow.model.db import dispose_engines

    # A local zone far from UTC on both the client and the PostgreSQL session.
    with monkeypatch.context() as zone:
        zone.setenv("TZ", "America/New_York")
        zone.setenv("PGTZ", "Asia/Kolkata")
        time.tzset()
        dispose_engines()
        try:
            before = datetime.now(UTC)
            cli.ok("add", "queue", "-n", "q")
            cli.ok("add", "network", "-n", "net")
            after = datetime.now(UTC)
            shown = [show(cli, "queue", "q")["created"], show(cli, "network", "net")["created"]]
            for created in shown:
                assert created.endswith("+00:00"), created
                assert before <= datetime.fromisoformat(created) <= after
            orm = _orm_created(initialised_db)
            assert orm.utcoffset() is not None and orm.utcoffset().total_seconds() == 0
            assert orm.isoformat() == shown[0]
        finally:
            dispose_engines()
    time.tzset()


def _orm_created(url: str) -> Any:
    from sqlalchemy import select

    from shellflow.model.db import session_scope
    from shellflow.model.network import Queue

    with session_scope(url) as session:
        return session.scalar(select(Queue.created).where(Queue.name == "q"))
