"""How commands print: data on stdout, everything else on stderr.

Lists are a table on a terminal, NDJSON with ``--json`` and tab-separated rows when piped;
colour only on a terminal and never under NO_COLOR.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()


def stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def info(message: str) -> None:
    """A message for the person at the terminal (stderr)."""
    click.echo(message, err=True)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_cell(v) if not isinstance(v, dict) else to_json(v) for v in value)
    if isinstance(value, dict):
        return to_json(value)
    return str(value).replace("\t", " ").replace("\n", " ")


def _console() -> Any:
    from rich.console import Console

    return Console(no_color=bool(os.environ.get("NO_COLOR")) or None, soft_wrap=False)


def _table(
    columns: Sequence[str], rows: Iterable[Mapping[str, Any]], title: str | None = None
) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    return table


def print_rows(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], as_json: bool) -> None:
    if as_json:
        for row in rows:
            click.echo(to_json(row))
    elif stdout_is_tty():
        _console().print(_table(columns, rows))
    else:
        for row in rows:
            click.echo("\t".join(_cell(row.get(c)) for c in columns))


def print_object(obj: Mapping[str, Any], as_json: bool) -> None:
    """One object: a JSON object, a table with its related lists, or key<TAB>value lines."""
    if as_json:
        click.echo(to_json(obj))
        return
    scalars = {k: v for k, v in obj.items() if not isinstance(v, list)}
    lists = {k: v for k, v in obj.items() if isinstance(v, list)}
    if not stdout_is_tty():
        for key, value in obj.items():
            click.echo(f"{key}\t{_cell(value)}")
        return
    console = _console()
    console.print(_table(list(scalars), [scalars]))
    for key, items in lists.items():
        if items and isinstance(items[0], dict):
            console.print(_table(list(items[0]), items, title=key.capitalize()))
        else:
            console.print(_table([key], [{key: i} for i in items], title=None))
