"""A call row whose arguments or result no JSON parser takes (written past the recorder: by
hand, or by an older version; text that is not JSON, or JSON nested past the parser's
recursion limit) is shown as the text it is: every command that reads it ends with a code of
the README's table and one line at most on stderr, never ``internal error``. On SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.hostile import write

DEEP = "[" * 100_000 + "]" * 100_000  # JSON, nested past json.loads' recursion limit
UNREADABLE = {
    "deep": ("11111111-1111-4111-8111-111111111111", DEEP),
    "not-json": ("22222222-2222-4222-8222-222222222222", "not json {"),
}


@pytest.fixture
def unreadable(cli: Any, initialised_db: str) -> str:
    now = datetime.now(UTC).replace(tzinfo=None)
    for state in ("finished", "failed"):
        for call_id, stored in UNREADABLE.values():
            call_id = call_id if state == "finished" else call_id[:-1] + "f"
            write(
                initialised_db,
                "INSERT INTO call (id, name, state, created, lastupdated, started, finished,"
                " tracking, args, result) VALUES (:id, 's1', :state, :now, :now, :now, :now,"
                " :id, :args, :result)",
                id=call_id, state=state, now=now, args=stored, result=stored,
            )  # fmt: skip
    return initialised_db


@pytest.mark.parametrize("which", list(UNREADABLE))
def test_commands_reading_an_unreadable_record_show_its_text(
    cli: Any, unreadable: str, which: str
) -> None:
    call_id, stored = UNREADABLE[which]
    failed = call_id[:-1] + "f"
    for args in (
        ("ls", "call", "--id", call_id),
        ("ls", "call", "--id", call_id, "--result"),
        ("ls", "call", "--id", call_id, "--graph"),
        ("ls", "call", "--id", call_id, "--graph", "--format", "dot"),
        ("ls", "calls"),
    ):
        result = cli(*args)
        assert result.code == 0, (args, result.stderr)
        assert len(result.stderr.splitlines()) <= 1, (args, result.stderr)  # ls calls: a page
    shown = json.loads(cli.ok("ls", "call", "--id", call_id, "--result", "--json").stdout)
    assert (shown["args"], shown["result"]) == (stored, stored)
    assert cli.ok("task", "result", call_id).stdout == stored + "\n"
    retried = cli("task", "retry", failed)
    assert retried.code == 4, retried.stderr
    assert retried.stderr.strip() == f"flow: call {failed} has no recorded arguments to send again"
