"""Compose files are read with bounds: size, depth and alias expansion; errors quote short.

A file is checked before any database is opened, so most of these need none.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from shellflow.model.compose_load import MAX_BYTES, MAX_DEPTH, MAX_NODES


def _laughs(levels: int = 9, value: str = "lol") -> str:
    """The "billion laughs": each level an alias list of nine of the level below."""
    lines = [f'x0: &x0 ["{value}", "{value}", "{value}", "{value}", "{value}", "{value}",'
             f' "{value}", "{value}", "{value}"]']  # fmt: skip
    for level in range(1, levels):
        below = f"*x{level - 1}"
        lines.append(f"x{level}: &x{level} [{', '.join([below] * 9)}]")
    return "\n".join(lines) + "\n"


BOMB_IN_FIELD = (
    _laughs() + "sockets:\n  s: {queue: q, processor: p, task: *x8}\n"  # a list where text goes
)
BOMB_IN_KEY = _laughs().replace("x", "k") + "queues:\n  ? *k8\n  : {}\n"  # a list as a name
MERGE_BOMB = "a0: &a0 {k: v}\n" + "".join(
    f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}], k{i}: v}}\n" for i in range(1, 40)
)

HOSTILE = {
    "alias bomb in a field": (BOMB_IN_FIELD, rf"aliases expand to more than {MAX_NODES}"),
    "alias bomb as a key": (BOMB_IN_KEY, rf"aliases expand to more than {MAX_NODES}"),
    "merge-key bomb": (MERGE_BOMB, rf"aliases expand to more than {MAX_NODES}"),
    "recursive alias": ("a: &a [*a]\n", r"repeats a node that contains it"),
    "deep flow nesting": ("a: " + "[" * 99_999 + "]" * 99_999 + "\n", rf"than {MAX_DEPTH}"),
    "deep block nesting": (
        "".join(" " * i + f"k{i}:\n" for i in range(200)),
        rf"deeper than {MAX_DEPTH}",
    ),
    "long value in a type error": (
        "queues:\n  q: {durable: '" + "x" * 200_000 + "'}\n",
        r"durable must be true or false",
    ),
    "long unknown field": (
        "queues:\n  q:\n    ? " + "y" * 200_000 + "\n    : 1\n",
        r"unknown field",
    ),
    "long undefined alias": ("a: *" + "z" * 200_000 + "\n", r"undefined alias"),
    "number of 5000 digits": ("queues:\n  q: {message_ttl: " + "1" * 5000 + "}\n", r"too long"),
    "too many values": (
        "x: [" + ",".join(["a"] * 400_000) + "]\n",
        rf"more than {MAX_NODES} values",
    ),
    "no such date": ("queues:\n  q: {type: 2026-13-45}\n", r":2:.*cannot read '2026-13-45'"),
}


@pytest.mark.timeout(60)  # each of these took seconds to minutes, and gigabytes, before
@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_file_is_one_short_line_and_exit_2(cli: Any, tmp_path: Path, name: str) -> None:
    text, message = HOSTILE[name]
    assert len(text) <= MAX_BYTES
    file = tmp_path / "hostile.yaml"
    file.write_text(text)
    result = cli("compose", "diff", str(file))
    assert result.code == 2, result.stderr[:500]
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr[:500]
    assert len(result.stderr) < 400, result.stderr[:500]  # quoted values are cut short
    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr


def test_the_bomb_is_small() -> None:
    assert len(BOMB_IN_FIELD) < 600  # about the 486 bytes: the bound is on expansion


@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
def test_a_file_over_the_size_bound_is_refused(cli: Any, tmp_path: Path, stdin: bool) -> None:
    text = "version: 1\n" + "#" * (MAX_BYTES - 11) + "\n"  # one byte over
    assert len(text.encode()) == MAX_BYTES + 1
    if stdin:
        result = cli("compose", "diff", "-", input=text)
    else:
        (tmp_path / "big.yaml").write_text(text)
        result = cli("compose", "diff", str(tmp_path / "big.yaml"))
    assert result.code == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "larger than 1048576 bytes" in result.stderr


def test_a_file_at_the_size_bound_and_honest_aliases_are_read(
    cli: Any, initialised_db: str, tmp_path: Path
) -> None:
    network = (
        "version: 1\n"
        "queues:\n  q1: {}\n"
        "processors:\n  proc1: {gitrepo: /repo, module: m}\n"
        "sockets:\n"
        "  s1: &base {queue: q1, processor: proc1, task: double}\n"
        "  s2: {<<: *base}\n"  # merged whole (an override is refused as twice)
    )
    text = network + "#" * (MAX_BYTES - len(network) - 1) + "\n"
    assert len(text.encode()) == MAX_BYTES
    (tmp_path / "net.yaml").write_text(text)
    result = cli("compose", "diff", str(tmp_path / "net.yaml"))
    assert result.code == 0, result.stderr
    assert "+ socket s2" in result.stdout, result.stdout


def test_a_file_that_never_ends_is_read_no_further_than_the_bound(cli: Any) -> None:
    result = cli("compose", "diff", "/dev/zero")
    assert result.code == 2 and "larger than" in result.stderr, result.stderr
