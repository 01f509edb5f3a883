"""``flow ls call --graph --format dot|mermaid``: every stored value stays inside its quotes.

The DOT check reads the output as Graphviz would: a statement ends only at a ``;`` outside
a quoted string, so counting statements outside quotes finds any that a name added."""

from __future__ import annotations

from typing import Any

import pytest

from shellflow.commands.calls import _graph_text
from tests.hostile import SHELL_NAMES

VALUES = [*SHELL_NAMES, "back\\", '\\"];', "#35;", "<b>&amp;</b>", "`md`", "]]>", "\\N\\G"]


def node(ident: str, name: str, state: str, children: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": ident, "name": name, "state": state, "children": children}


def graph() -> list[dict[str, Any]]:
    children = [node(v, v, v, []) for v in VALUES]
    return [node("root-id", "root", "finished", children)]


def dot_statements(text: str) -> tuple[list[str], bool]:
    """The statements of a DOT body, split at ``;`` outside quoted strings, and whether every
    quoted string was closed (``\\"`` does not close one)."""
    statements, current, quoted, escaped = [], "", False, False
    for char in text:
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
            current += char
        elif char == '"':
            quoted = True
            current += char
        elif char == ";":
            statements.append(current.strip())
            current = ""
        else:
            current += char
    return [s for s in statements if s], not quoted


def test_dot_has_one_statement_per_call_and_edge() -> None:
    lines = _graph_text(graph(), "dot")
    assert lines[0] == "digraph flow {" and lines[-1] == "}"
    body = "\n".join(lines[1:-1])
    assert all(ord(c) >= 32 for c in body.replace("\n", ""))  # no raw control character
    assert len(lines) == 2 + (1 + len(VALUES)) * 2 - 1  # a line a node, a line an edge
    statements, closed = dot_statements(body)
    assert closed
    assert len(statements) == (1 + len(VALUES)) * 2 - 1
    edges = [s for s in statements if s.startswith('"root-id" -> ')]
    assert len(edges) == len(VALUES)


@pytest.mark.parametrize("value", VALUES)
def test_mermaid_labels_hold_no_syntax(value: str) -> None:
    lines = _graph_text([node("r", value, value, [node(value, "x", "y", [])])], "mermaid")
    assert lines[0] == "graph TD"
    assert len(lines) == 4  # two nodes, one edge
    first, second, edge = lines[1:]
    assert first.startswith('  c0["') and first.endswith('"]') and first.count('"') == 2
    label = first[len('  c0["') : -2]
    assert label.count("<br/>") == 1  # the one break shellflow puts between name and state
    text = label.replace("<br/>", "")
    assert not any(c in text for c in '"`<>&') and text.isprintable(), text
    assert second == '  c1["x<br/>y"]' and edge == "  c0 --> c1"
