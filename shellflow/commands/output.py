"""How commands print: data on stdout, everything else on stderr.

Lists are a table on a terminal, NDJSON with ``--json`` and tab-separated rows when piped.
The tab-separated form escapes what would break a row (backslash, tab, newline, carriage
return as ``\\\\``, ``\\t``, ``\\n``, ``\\r``) and every other control character as ``\\xNN``
(:mod:`shellflow.printable`), prints None as an empty field and booleans as ``true``/``false``,
so ``cut -f`` and ``while IFS=$'\\t' read`` see one record per line and no field can drive the
terminal it ends up on. rich is imported only to draw a table on a terminal; colour never under
NO_COLOR. Stored text in a table, and every message on stderr, has its control characters
escaped the same way (backslashes left alone there); NDJSON and ``--json`` print values
exactly (JSON escapes C0 itself).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click

from shellflow.printable import printable

# Fields of ``flow ls call`` (and others) that hold several lines: their newlines and tabs
# stay in a table's cell; everywhere else they are written out.
MULTILINE_FIELDS = frozenset({"traceback", "error", "description"})


class ReaderGone(Exception):
    """Whoever read stdout went away (``flow ls | head -1``); the command ends quietly.

    Not an OSError on purpose: click turns a broken pipe into a silent exit 1, while a shell
    tool should end successfully (``set -o pipefail`` scripts rely on it).
    """


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe or socket whose reader has closed it (poll says POLLERR)."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, ValueError, OSError):
        return False


def stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def no_color() -> bool:
    """NO_COLOR set to anything but the empty string turns colour off (no-color.org)."""
    return bool(os.environ.get("NO_COLOR"))


def to_json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def info(message: str) -> None:
    """A message for the person at the terminal (stderr); it may name stored objects, so its
    control characters are written out."""
    click.echo(printable(message, multiline=True), err=True)


def _text(value: Any) -> str:
    """A value as text: None empty, booleans lower-case, lists comma-joined, dicts as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(to_json(v) if isinstance(v, dict) else _text(v) for v in value)
    if isinstance(value, dict):
        return to_json(value)
    return str(value)


def tsv_field(value: Any) -> str:
    """One field of a tab-separated row, escaped so it cannot split the row: backslash first
    (so the field reads back exactly), then every control character."""
    return printable(_text(value).replace("\\", "\\\\"))


def tsv_row(values: Iterable[Any]) -> str:
    return "\t".join(tsv_field(v) for v in values)


def write_lines(lines: Iterable[str]) -> None:
    """Data lines on stdout, flushed once at the end (not per line, as click.echo does).

    Use it (or :func:`print_rows`, :func:`print_object`) for everything a command prints as
    data: a reader that goes away raises :class:`ReaderGone`, which ends the command quietly.
    """
    out = sys.stdout
    try:
        for line in lines:
            out.write(line)
            out.write("\n")
        out.flush()
    except BrokenPipeError:
        raise ReaderGone() from None


def _console() -> Any:
    """A console for a terminal: we only get here once stdout_is_tty() said so."""
    from rich.console import Console

    plain = no_color()
    return Console(
        force_terminal=True,
        no_color=plain,
        color_system=None if plain else "auto",
        highlight=False,
        soft_wrap=False,
    )


def _cell(value: Any, multiline: bool = False) -> Any:
    """A stored value as a table cell: Text, not str, so "[red]" shows as written, not as
    markup; control characters written out (newlines and tabs kept in a multi-line field)."""
    from rich.text import Text

    return Text(printable(_text(value), multiline=multiline))


def _table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Any:
    from rich.table import Table
    from rich.text import Text

    shown = title if title is None else printable(title)
    table = Table(title=shown, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(_cell(column))
    for row in rows:
        table.add_row(*(v if isinstance(v, Text) else _cell(v) for v in row))
    return table


def print_rows(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], as_json: bool) -> None:
    """A list of objects: NDJSON, a table on a terminal, or tab-separated rows."""
    if as_json:
        write_lines(to_json(row) for row in rows)
    elif stdout_is_tty():
        _console().print(_table(columns, ([row.get(c) for c in columns] for row in rows)))
    else:
        write_lines(tsv_row(row.get(c) for c in columns) for row in rows)


def print_object(obj: Mapping[str, Any], as_json: bool) -> None:
    """One object: a JSON object, tables of its fields and related lists, or key<TAB>value."""
    if as_json:
        write_lines([to_json(obj)])
        return
    if not stdout_is_tty():
        write_lines(tsv_row((key, value)) for key, value in obj.items())
        return
    console = _console()
    fields = [
        (k, _cell(v, k in MULTILINE_FIELDS)) for k, v in obj.items() if not isinstance(v, list)
    ]
    console.print(_table(["field", "value"], fields))
    for key, items in obj.items():
        if not isinstance(items, list):
            continue
        if items and all(isinstance(i, dict) for i in items):
            columns = list(items[0])
            console.print(_table(columns, ([i.get(c) for c in columns] for i in items), key))
        else:
            console.print(_table([key], ([i] for i in items)))
