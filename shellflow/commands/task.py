"""``flow task run``: call a socket from the shell.

Input is a JSON value (text that is not JSON is passed as a string, never evaluated) from
``--data`` or from stdin, given to the function as its first argument; ``key=value`` and
``key:=json`` words become keyword arguments. The result goes to stdout: strings as they
are, anything else as compact JSON, so one socket's output is the next one's input.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from shellflow.commands.complete import flow_ids, names_of
from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import stdin_is_tty, to_json


def parse_value(text: str) -> Any:
    """A JSON value, or the text itself when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_keywords(words: tuple[str, ...]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for word in words:
        if ":=" in word and word.index(":=") < word.find("=") + 1:
            key, raw = word.split(":=", 1)
            try:
                kwargs[key] = json.loads(raw)
            except ValueError as exc:
                raise click.BadParameter(f"{word!r}: not JSON after ':='") from exc
        elif "=" in word:
            key, raw = word.split("=", 1)
            kwargs[key] = raw
        else:
            raise click.BadParameter(f"{word!r}: expected key=value or key:=json")
        if not key.isidentifier():
            raise click.BadParameter(f"{key!r} is not an argument name")
    return kwargs


def format_result(value: Any) -> str:
    return value if isinstance(value, str) else to_json(value)


@click.group()
def task() -> None:
    """Run and manage calls of sockets."""


@task.command("run")
@click.option(
    "-s", "--socket", required=True, help="Socket to call", shell_complete=names_of("socket")
)
@click.option("--data", help="Input: a JSON value, or text passed as a string")
@click.option("--async", "is_async", is_flag=True, help="Print the call id and return")
@click.option("--timeout", type=click.FloatRange(min=0), help="Seconds to wait for the result")
@click.option("--flow", "flow_id", help="Join this flow run", shell_complete=flow_ids)
@click.argument("keywords", nargs=-1)
@pass_app
def task_run(
    app: AppContext, socket: str, data: str | None, is_async: bool, timeout: float | None,
    flow_id: str | None, keywords: tuple[str, ...],
) -> None:  # fmt: skip
    """Call SOCKET with input from --data or stdin, and print its result.

    \b
    The calls of one shell pipeline share one flow run (see 'flow ls call --id ID -g'):
    flow follows the pipes between the commands; --flow ID or SHELLFLOW_FLOW override it.
    """
    from shellflow.engine.client import send, wait

    app.authorize("RUN_TASK", socket)
    kwargs = parse_keywords(keywords)
    flow_id = flow_id or os.environ.get("SHELLFLOW_FLOW") or None
    place, registry = _pipeline(app) if flow_id is None else (None, None)
    if place is not None and registry is not None and place.key:
        flow_id = registry.flow_for(place.key)
    args: list[Any] = []
    if data is not None:
        args.append(parse_value(data))
    elif not stdin_is_tty():
        text = sys.stdin.read()
        if text.endswith("\n"):
            text = text[:-1]
        if text or not kwargs:
            args.append(parse_value(text))
    # Upstream commands have recorded their calls by the time our input ended.
    parent = registry.call_writing(place.upstream) if place and registry else None
    sent = send(app.settings, socket, args, kwargs, flow=flow_id, parent=parent)
    if place is not None and registry is not None and place.stdout:
        registry.record_call(place.stdout, sent.call_id)
    if is_async:
        click.echo(sent.call_id)
        return
    click.echo(format_result(wait(sent, timeout)))


def _pipeline(app: AppContext) -> tuple[Any, Any]:
    """Where this command sits in its shell pipeline, and the registry of pipelines."""
    from shellflow.client.pipes import Registry, locate

    try:
        return locate(), Registry(app.settings.home)
    except OSError:  # an unreadable /proc or home: calls still run, in their own flows
        return None, None
