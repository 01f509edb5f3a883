"""Every path that creates or renames an object checks the one name rule (exit 2, the rule
in one stderr line, nothing stored): ``flow add``, ``flow update --rename``, compose files,
the Python object API, the decorators and ``flow agent start --node``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import shellflow
from shellflow.client import settings as api_settings
from shellflow.errors import UsageError
from shellflow.model.checks import NAME_RULE
from tests.hostile import write
from tests.integration.objects_support import (
    DO_SOMETHING,
    DO_THIS,
    MODULE,
    REPO,
    count,
    names,
)
from tests.integration.test_objects import COMPLETE, world  # noqa: F401  (fixture)

HOSTILE = ["a$(touch pwned)", 'x"];', "sudo ls", "line\nbreak", "-rf"]
RENAMED = {"queue": "q2", "processor": "proc1", "socket": DO_THIS, "network": "net1",
           "scheduler": "sch1", "node": "node1"}  # fmt: skip
TABLES = ("queue", "processor", "socket", "plug", "argument", "node", "agent", "scheduler",
          "deployment", "network", "users", "role")  # fmt: skip


def refused(result: Any) -> None:
    assert result.code == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert NAME_RULE in result.stderr
    assert "Traceback" not in result.stderr


def counts(url: str) -> dict[str, int]:
    return {table: count(url, table) for table in TABLES}


def test_add_and_rename_refuse_a_name_outside_the_rule(cli: Any, world: str) -> None:  # noqa: F811
    before = counts(world)
    for name in HOSTILE:
        for kind, args in COMPLETE.items():
            if kind == "privilege":  # named by its right, which must be a known right
                continue
            given = [name if a == "x" and args[i - 1] == "-n" else a for i, a in enumerate(args)]
            refused(cli("add", kind, *given))
        for kind, old in RENAMED.items():
            refused(cli("update", kind, "-n", old, "--rename", name))
        refused(cli("update", "argument", "-n", "data", "-s", DO_THIS, "--rename", name))
    assert counts(world) == before
    assert names(cli, "queues") == ["pyfi.queue1", "q2"]


def test_an_object_stored_before_the_rule_can_still_be_renamed(cli: Any, world: str) -> None:  # noqa: F811
    write(world, "UPDATE queue SET name = :bad WHERE name = 'q2'", bad="old name;")
    cli.ok("update", "queue", "-n", "old name;", "--rename", "q2.renamed")
    assert "q2.renamed" in names(cli, "queues")


def test_compose_refuses_a_name_outside_the_rule(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text('version: 1\nqueues:\n  ok: {}\n  "a$(touch pwned)": {}\n')
    result = cli("compose", "up", str(path))
    refused(result)
    assert "bad.yaml:4" in result.stderr


def test_a_plugs_new_argument_follows_the_rule(cli: Any, world: str, tmp_path: Path) -> None:  # noqa: F811
    """A plug's ``-a`` adds that argument to its target's task when it is new: typed or
    composed, the name is checked as ``flow add argument`` checks it."""
    plug = ["-q", "pyfi.queue1", "-s", DO_SOMETHING, "-t", DO_THIS]
    before = counts(world)
    cli.ok("add", "plug", "-n", "pl.ok", *plug, "-a", "fine_arg")
    for name in HOSTILE:
        refused(cli("add", "plug", "-n", "pl.bad", *plug, "-a", name))
        refused(cli("update", "plug", "-n", "pl.ok", "-a", name))
        path = tmp_path / "plug.yaml"
        body = f"{{source: {DO_SOMETHING}, target: {DO_THIS}, queue: pyfi.queue1, argument: "
        path.write_text(f"version: 1\nplugs:\n  pl.composed: {body}{json.dumps(name)}}}\n")
        refused(cli("compose", "up", str(path)))
    after = counts(world)
    assert (after["plug"], after["argument"]) == (before["plug"] + 1, before["argument"] + 1)
    assert (
        json.loads(cli.ok("ls", "plug", "-n", "pl.ok", "--json").stdout)["argument"] == "fine_arg"
    )


@pytest.fixture
def configured(initialised_db: str) -> Any:
    shellflow.configure(db=initialised_db)
    yield initialised_db
    api_settings.reset()


def test_python_api_and_decorators_refuse_a_name_outside_the_rule(configured: str) -> None:
    from shellflow import Plug, Processor, ProcessorBase, Socket, plug, processor, socket

    before = counts(configured)
    Processor(name="proc1", gitrepo=REPO, module=MODULE)
    Socket(name="s1", processor="proc1", queue="q1", task="do_this")
    Socket(name="s1b", processor="proc1", queue="q1", task="do_that")
    for name in HOSTILE:
        with pytest.raises(UsageError, match="a name is"):
            Processor(name=name, gitrepo=REPO, module=MODULE)
        with pytest.raises(UsageError, match="a name is"):
            Socket(name=name, processor="proc1", queue="q1", task="do_this")
        with pytest.raises(UsageError, match="a name is"):
            Socket(name="s2", processor="proc1", queue={"name": name}, task="do_this")
        with pytest.raises(UsageError, match="a name is"):
            Plug(name=name, source="s1", target="s1b", queue="q1")
        with pytest.raises(UsageError, match="a name is"):
            socket(name=name, queue="q1")
        with pytest.raises(UsageError, match="a name is"):
            plug(name=name, target="s1", queue="q1")
        with pytest.raises(UsageError, match=r"argument name .* a name is"):
            Plug(name="pl2", source="s1", target="s1b", queue="q1", argument=name)
        with pytest.raises(UsageError, match=r"argument name .* a name is"):
            plug(name="pl3", target="s1", queue="q1", argument=name)
        with pytest.raises(UsageError, match="a name is"):

            @processor(name=name, gitrepo=REPO, module=MODULE)
            class Hostile(ProcessorBase):
                pass

    after = counts(configured)
    assert after["processor"] == before["processor"] + 1
    assert after["socket"] == before["socket"] + 2
    assert (after["plug"], after["argument"]) == (before["plug"], before["argument"])
    assert after["queue"] == before["queue"] + 1


def test_agent_start_refuses_a_node_name_outside_the_rule(cli: Any, initialised_db: str) -> None:
    refused(cli("agent", "start", "--node", "a$(touch pwned)"))
    assert count(initialised_db, "node") == 0
