"""Completion candidates from a database holding names stored before the name rule: such a
name is never offered, and no description spans more than one line."""

from __future__ import annotations

from typing import Any

from shellflow.model.checks import valid_name
from tests.hostile import SHELL_NAMES, write


def _network(cli: Any, url: str) -> None:
    cli.ok("add", "queue", "-n", "q.ok")
    cli.ok("add", "processor", "-n", "proc1", "-g", "/repo", "-m", "mod", "-h", "localhost")
    for index, name in enumerate(SHELL_NAMES):
        cli.ok("add", "queue", "-n", f"q{index}")
        write(url, "UPDATE queue SET name = :bad WHERE name = :n", bad=name, n=f"q{index}")
    write(url, "UPDATE processor SET module = :bad", bad="mod\nplain\nextra\n_\tx")
    for index, ident in enumerate(["ok-1", *SHELL_NAMES]):
        write(
            url,
            "INSERT INTO call (id, created, lastupdated, name, state, started, tracking)"
            " VALUES (:id, '2026-01-02 03:04:05', '2026-01-02 03:04:05', :name, :state,"
            " '2026-01-02 03:04:05', :tracking)",
            id=ident[:36], name=f"n\n{index}", state="s\tx", tracking=ident[:36],
        )  # fmt: skip


def test_hostile_names_are_not_offered_and_descriptions_stay_on_one_line(
    cli: Any, initialised_db: str
) -> None:
    from shellflow.commands.complete import object_names, recent_calls
    from shellflow.model.listing import reader

    _network(cli, initialised_db)
    with reader(initialised_db) as conn:
        queues = object_names(conn, "queue", "")
        processors = object_names(conn, "processor", "")
        calls = recent_calls(conn, "")
        flows = recent_calls(conn, "", column="tracking")
    assert [i.value for i in queues] == ["q.ok"]
    assert [i.value for i in processors] == ["proc1"]
    assert processors[0].help == "mod plain extra _ x, on localhost, ready"
    assert [i.value for i in calls] == ["ok-1"] and [i.value for i in flows] == ["ok-1"]
    for item in [*queues, *processors, *calls, *flows]:
        assert valid_name(item.value)
        assert item.help is None or item.help.isprintable()
