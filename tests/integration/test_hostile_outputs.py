"""Names and values written straight into the database (past the name rule, as a database
filled before it may hold them) never become code in what shellflow writes for a shell, a
completion or a graph: ``flow shell aliases | install``, zsh/fish/bash completion
candidates, ``flow ls call --graph --format dot | mermaid``. On both databases."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shellflow.model.checks import valid_name
from tests.hostile import SHELL_NAMES, write
from tests.integration.objects_support import DO_SOMETHING, DO_THIS, quickstart

FLOW = [str(Path(sys.executable).with_name("flow"))]


@pytest.fixture
def hostile_sockets(cli: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The quick start, then one socket per hostile name, renamed by raw SQL."""
    monkeypatch.setenv("PATH", "/nonexistent")  # nothing on PATH to shadow
    quickstart(cli)
    for index, name in enumerate(SHELL_NAMES):
        cli.ok("add", "socket", "-n", f"s{index}", "-q", "pyfi.queue1", "-pn", "proc1",
               "-t", "do_this")  # fmt: skip
        write(initialised_db, "UPDATE socket SET name = :bad WHERE name = :n", bad=name,
              n=f"s{index}")  # fmt: skip
    write(initialised_db, "UPDATE queue SET name = :bad", bad="q\nplain\nq2\n_")
    cli.ok("add", "queue", "-n", "q.ok")
    write(initialised_db, "UPDATE processor SET hostname = :bad", bad="h\nplain\nevil\n_\tx")
    return initialised_db


def test_aliases_print_only_names_in_the_rule_and_name_the_others(
    cli: Any, hostile_sockets: str
) -> None:
    result = cli("shell", "aliases")
    assert result.code == 4
    lines = result.stdout.splitlines()
    assert [shlex.split(line)[1].split("=", 1)[0] for line in lines] == [DO_SOMETHING, DO_THIS]
    assert len(result.stderr.strip().splitlines()) == 1
    assert "break the name rule" in result.stderr
    assert all(repr(name) in result.stderr for name in SHELL_NAMES)


def test_install_writes_only_names_in_the_rule(
    cli: Any, hostile_sockets: str, tmp_path: Path
) -> None:
    folder = tmp_path / "bin"
    result = cli("shell", "install", str(folder))
    assert result.code == 4
    assert sorted(p.name for p in folder.iterdir()) == [DO_SOMETHING, DO_THIS]
    assert result.stderr.strip().splitlines()[-1].count("break the name rule") == 1


def complete(words: str, shell: str) -> str:
    """What ``flow`` answers a shell's completion function for ``words`` (cursor at the end)."""
    # fish passes the word being completed (here empty) where bash and zsh pass its index.
    cword = "" if shell == "fish" else str(len(words.split(" ")) - 1)
    env = {**os.environ, "_FLOW_COMPLETE": f"{shell}_complete", "COMP_WORDS": words,
           "COMP_CWORD": cword}  # fmt: skip
    proc = subprocess.run(FLOW, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize(
    "words", ["flow task run -s ", "flow add socket -q ", "flow add socket -pn "]
)
def test_completion_offers_no_hostile_name_and_no_extra_candidate(
    hostile_sockets: str, words: str
) -> None:
    zsh = complete(words, "zsh").removesuffix("\n").split("\n")
    assert len(zsh) % 3 == 0, zsh  # type, value, description: three lines a candidate
    triples = [zsh[i : i + 3] for i in range(0, len(zsh), 3)]
    assert all(kind == "plain" for kind, _, _ in triples), triples
    values = [value.replace("\\:", ":") for _, value, _ in triples]
    assert values and all(valid_name(v) for v in values), values
    fish = complete(words, "fish").splitlines()
    assert [line.split("\t")[0].removeprefix("plain,") for line in fish] == values
    assert all(line.count("\t") <= 1 for line in fish)
    bash = complete(words, "bash").splitlines()
    assert [line.removeprefix("plain,") for line in bash] == values
    if words.endswith("-s "):
        assert values == [DO_SOMETHING, DO_THIS]


T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ROOT = "00000001-0000-4000-8000-000000000000"
HOSTILE_IDS = ['x" -> "y"; z [label="', "a\nb", "c\\"]
HOSTILE_STATES = ['done"];evil', "<b>#35;`x`&"]


@pytest.fixture
def hostile_calls(initialised_db: str) -> list[tuple[str, str, str]]:
    """A flow run: a root and one child per hostile name, hostile ids and states among them."""
    rows = [(ROOT, SHELL_NAMES[6], HOSTILE_STATES[0])]
    for index, name in enumerate(SHELL_NAMES):
        ident = HOSTILE_IDS[index] if index < len(HOSTILE_IDS) else f"child-{index}"
        rows.append((ident, name, HOSTILE_STATES[index % 2]))
    for n, (ident, name, state) in enumerate(rows):
        write(
            initialised_db,
            "INSERT INTO call (id, created, lastupdated, name, state, started, tracking, parent)"
            " VALUES (:id, :t, :t, :name, :state, :t, :root, :parent)",
            id=ident, t=T0.replace(second=n, tzinfo=None), name=name, state=state, root=ROOT,
            parent=None if ident == ROOT else ROOT,
        )  # fmt: skip
    return rows


DOT_STRING = r'"((?:[^"\\]|\\.)*)"'
DOT_NODE = re.compile(rf"  {DOT_STRING} \[label={DOT_STRING}\];")
DOT_EDGE = re.compile(rf"  {DOT_STRING} -> {DOT_STRING};")


def dot_text(quoted: str) -> str:
    """A DOT quoted string's text, as Graphviz shows it in a label (``\\n`` a line break)."""
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), quoted)


def shown(text: str) -> str:
    """Stored text as a graph label must show it: a control character as its escape."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def test_dot_quotes_every_stored_value(cli: Any, hostile_calls: list[tuple[str, str, str]]) -> None:
    lines = cli.ok("ls", "call", "--id", ROOT, "-g", "--format", "dot").stdout.split("\n")
    assert lines[0] == "digraph flow {" and lines[-2:] == ["}", ""]
    body = lines[1:-2]
    nodes = [DOT_NODE.fullmatch(line) for line in body[: len(hostile_calls)]]
    edges = [DOT_EDGE.fullmatch(line) for line in body[len(hostile_calls) :]]
    assert all(nodes) and all(edges) and len(edges) == len(hostile_calls) - 1, body
    drawn = {(dot_text(m.group(1)), dot_text(m.group(2))) for m in nodes if m}
    assert drawn == {(shown(i), f"{shown(n)}\n{shown(s)}") for i, n, s in hostile_calls}
    root = next(m.group(1) for m in nodes if m and dot_text(m.group(1)) == ROOT)
    assert {m.group(1) for m in edges if m} == {root}


MERMAID_NODE = re.compile(r'  (c\d+)\["([^"\n]*)<br/>([^"\n<]*)"\]')
MERMAID_EDGE = re.compile(r"  (c\d+) --> (c\d+)")


def test_mermaid_escapes_every_stored_value(
    cli: Any, hostile_calls: list[tuple[str, str, str]]
) -> None:
    lines = cli.ok("ls", "call", "--id", ROOT, "-g", "--format", "mermaid").stdout.splitlines()
    assert lines[0] == "graph TD"
    nodes = [MERMAID_NODE.fullmatch(line) for line in lines[1 : 1 + len(hostile_calls)]]
    edges = [MERMAID_EDGE.fullmatch(line) for line in lines[1 + len(hostile_calls) :]]
    assert all(nodes) and all(edges) and len(edges) == len(hostile_calls) - 1, lines
    drawn = set()
    for match in nodes:
        assert match is not None
        for text in match.groups()[1:]:
            assert not re.search(r"[`<>]|&|#(?!\d+;|quot;|lt;|gt;|amp;)", text), text
        drawn.add((mermaid_text(match.group(2)), mermaid_text(match.group(3))))
    assert drawn == {(shown(n), shown(s)) for _, n, s in hostile_calls}


ENTITIES = {"quot": '"', "lt": "<", "gt": ">", "amp": "&"}


def mermaid_text(label: str) -> str:
    """A Mermaid label's text, its entity codes (``#quot;``, ``#35;``) decoded."""
    return re.sub(r"#(\w+);", lambda m: ENTITIES.get(m.group(1)) or chr(int(m.group(1))), label)
