"""``flow ls calls`` and ``flow ls call`` over stored call records, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _store_calls(url: str) -> dict[str, str]:
    """25 calls: a flow run root -> (a, b), a -> c; the rest unrelated; 3 still running."""
    from shellflow.model.calls import Call, Event
    from shellflow.model.db import session_scope

    ids: dict[str, str] = {}
    with session_scope(url) as session:

        def call(key: str, n: int, **kw: object) -> Call:
            row = Call(id=f"{n:08d}-0000-4000-8000-000000000000", name=kw.pop("name", "sock.a"),
                       state=kw.pop("state", "finished"), started=T0 + timedelta(seconds=n),
                       finished=T0 + timedelta(seconds=n, milliseconds=5), **kw)  # fmt: skip
            ids[key] = row.id
            session.add(row)
            return row

        root = call("root", 1, name="sock.root", result=json.dumps({"sum": 3}))
        flow = root.id
        root.tracking = flow
        call("a", 2, tracking=flow, parent=root.id)
        call("b", 3, tracking=flow, parent=root.id, state="failed", error="ValueError: no")
        call("c", 4, tracking=flow, parent=ids["a"])
        for n in range(5, 26):
            call(f"x{n}", n, name="sock.b" if n % 2 else "sock.a",
                 state="running" if n in (7, 8, 9) else "finished")  # fmt: skip
        session.flush()
        for i, name in enumerate(("received", "prerun", "postrun")):
            session.add(Event(name=name, note=f"{name} note", call_id=root.id,
                              created=T0 + timedelta(milliseconds=i)))  # fmt: skip
    return ids


@pytest.fixture
def calls(cli, initialised_db: str) -> dict[str, str]:
    return _store_calls(initialised_db)


def _ids(stdout: str) -> list[str]:
    return [json.loads(line)["id"] for line in stdout.splitlines()]


def test_pages_newest_first_with_footer(cli, calls: dict[str, str]) -> None:
    first = cli.ok("ls", "calls", "--json")
    assert _ids(first.stdout) == [f"{n:08d}-0000-4000-8000-000000000000" for n in range(25, 15, -1)]
    assert "Page 1 of 3 of 25 total records" in first.stderr
    last = cli.ok("ls", "calls", "-p", "3", "--json")
    assert len(_ids(last.stdout)) == 5
    ascending = cli.ok("ls", "calls", "-a", "-r", "2", "--json")
    assert _ids(ascending.stdout) == [calls["root"], calls["a"]]


def test_filters(cli, calls: dict[str, str]) -> None:
    unfinished = cli.ok("ls", "calls", "-u", "--json")
    assert {json.loads(r)["state"] for r in unfinished.stdout.splitlines()} == {"running"}
    assert "of 3 total records" in unfinished.stderr
    failed = cli.ok("ls", "calls", "--state", "failed", "--json")
    assert _ids(failed.stdout) == [calls["b"]]
    by_socket = cli.ok("ls", "calls", "--socket", "sock.b", "-r", "100", "--json")
    assert {json.loads(r)["name"] for r in by_socket.stdout.splitlines()} == {"sock.b"}
    since = cli.ok("ls", "calls", "--since", (T0 + timedelta(seconds=24)).isoformat(), "--json")
    assert len(_ids(since.stdout)) == 2
    assert cli("ls", "calls", "--since", "yesterday").code == 2


def test_one_call_with_events_and_result(cli, calls: dict[str, str]) -> None:
    shown = json.loads(cli.ok("ls", "call", "--id", calls["root"], "--result", "--json").stdout)
    assert shown["name"] == "sock.root"
    assert shown["result"] == {"sum": 3}
    assert shown["flow"] == calls["root"] and shown["parent"] is None
    assert [e["name"] for e in shown["events"]] == ["received", "prerun", "postrun"]
    plain = json.loads(cli.ok("ls", "call", "--id", calls["b"], "--json").stdout)
    assert "result" not in plain and plain["error"] == "ValueError: no"
    missing = cli("ls", "call", "--id", calls["root"][:-1] + "9")
    assert missing.code == 3 and "did you mean" in missing.stderr


def test_tree_and_graph(cli, calls: dict[str, str]) -> None:
    forward = cli.ok("ls", "call", "--id", calls["a"], "--tree").stdout.splitlines()
    assert [line.split()[-2] for line in forward] == [calls["a"], calls["c"]]
    graph = cli.ok("ls", "call", "--id", calls["c"], "--graph").stdout
    assert graph.splitlines()[0].startswith("sock.root")
    assert all(calls[k] in graph for k in ("root", "a", "b", "c"))
    nested = json.loads(cli.ok("ls", "call", "--id", calls["c"], "-g", "--json").stdout)
    assert [child["id"] for child in nested["children"]] == [calls["a"], calls["b"]]
    assert nested["children"][0]["children"][0]["id"] == calls["c"]
    dot = cli.ok("ls", "call", "--id", calls["a"], "-g", "--format", "dot").stdout
    assert f'"{calls["root"]}" -> "{calls["a"]}";' in dot and dot.startswith("digraph")
    mermaid = cli.ok("ls", "call", "--id", calls["a"], "-g", "--format", "mermaid").stdout
    assert mermaid.startswith("graph TD") and "-->" in mermaid
    flow = cli.ok("ls", "call", "--id", calls["b"], "--flow", "--json").stdout
    assert _ids(flow) == [calls["root"], calls["a"], calls["b"], calls["c"]]
