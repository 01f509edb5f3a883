"""The ``flow`` command lines a guide shows are ones ``flow`` accepts.

docs/scaling.md is a how-to: a reader copies its commands. Each ``flow ...`` line of its
``sh`` blocks is parsed here by the real click commands (names, options, their values'
types and choices), without running anything, so a renamed option or command fails this
test instead of the reader's first try.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from shellflow.commands import cli

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDES = ["scaling.md"]
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def command_lines(text: str) -> list[str]:
    """The ``flow`` commands of the ``sh`` blocks: comments, variable assignments and
    ``$(...)`` values stripped; lines of other programs left out."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```sh"
            continue
        if not inside:
            continue
        words = shlex.split(re.sub(r"\$\([^)]*\)", "VALUE", line), comments=True)
        while words and ASSIGNMENT.match(words[0]):
            words.pop(0)
        if words and words[0] == "flow":
            lines.append(shlex.join(words[1:]))
    return lines


def parse(args: list[str]) -> None:
    """Walk the groups to the command and let click parse its arguments (no callback runs)."""
    command: click.Command = cli
    context = click.Context(cli, info_name="flow")
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        found = command.get_command(context, args[0])
        assert found is not None, f"no command {args[0]!r}"
        context = click.Context(found, parent=context, info_name=args[0])
        command, args = found, args[1:]
    command.make_context(context.info_name, list(args), parent=context.parent)


@pytest.mark.parametrize("guide", GUIDES)
def test_every_flow_command_of_the_guide_parses(guide: str) -> None:
    lines = command_lines((DOCS / guide).read_text())
    assert len(lines) >= 20, lines  # the guide still shows its commands
    for line in lines:
        try:
            parse(shlex.split(line))
        except (click.UsageError, AssertionError) as exc:
            pytest.fail(f"{guide}: flow {line}: {exc}")


def test_a_wrong_option_is_caught() -> None:
    with pytest.raises(click.UsageError):
        parse(["agent", "start", "--nodes", "n1"])
    with pytest.raises(click.UsageError):
        parse(["node", "drain"])  # -n is required
    assert command_lines("```sh\nX=$(cat t) flow ls nodes  # all\ncurl x\n```\n") == ["ls nodes"]
