"""The call tree behind ``flow ls call --tree/--graph`` and the dashboard's call graph."""

from __future__ import annotations

from typing import Any

from shellflow.commands.calls import _graph_text
from shellflow.model.history import tree


def _call(call_id: str, parent: str | None = None, sources: list[str] | None = None) -> Any:
    return {"id": call_id, "name": f"s.{call_id}", "state": "finished", "parent": parent,
            "sources": sources or []}  # fmt: skip


def _shape(nodes: list[dict[str, Any]]) -> list[Any]:
    return [(n["id"], _shape(n["children"])) for n in nodes]


def test_a_call_fed_by_several_hangs_under_each() -> None:
    calls = [_call("a"), _call("b", "a"), _call("c", "a"), _call("d", "c", ["b", "c"])]
    assert _shape(tree(calls)) == [("a", [("b", [("d", [])]), ("c", [("d", [])])])]
    assert _shape(tree(calls, "b")) == [("b", [("d", [])])]


def test_the_graph_draws_each_call_once_with_an_edge_from_each_source() -> None:
    calls = [_call("a"), _call("b", "a"), _call("c", "a"), _call("d", "c", ["b", "c"])]
    lines = _graph_text(tree(calls), "dot")
    assert sum(line.startswith('  "d" [') for line in lines) == 1
    assert sorted(line for line in lines if "->" in line) == [
        '  "a" -> "b";', '  "a" -> "c";', '  "b" -> "d";', '  "c" -> "d";'
    ]  # fmt: skip


def test_records_that_loop_still_make_a_finite_tree() -> None:
    calls = [_call("a", "b"), _call("b", "a"), _call("c", "c")]
    shape = _shape(tree(calls))
    assert ("c", []) in shape
    assert [root for root, _ in shape if root != "c"] == ["a"]  # shown once, not lost
    assert _shape(tree(calls, "a")) == [("a", [("b", [])])]
