"""``flow listen``: print a processor's live events as they happen (spec 10.1.6)."""

from __future__ import annotations

import importlib
import json
from typing import Any

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info, stdout_is_tty, write_lines


def _adaptor(path: str) -> Any:
    """``module.Class`` -> an instance whose ``put(event)`` receives each event."""
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise click.BadParameter(f"{path!r}: expected module.Class", param_hint="--adaptor")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise click.BadParameter(f"cannot load {path!r}: {exc}", param_hint="--adaptor") from exc
    adaptor = target() if isinstance(target, type) else target
    if not callable(getattr(adaptor, "put", None)):
        raise click.BadParameter(f"{path!r} has no put(event) method", param_hint="--adaptor")
    return adaptor


def _readable(event: dict[str, Any]) -> str:
    data = event.get("data")
    text = data if isinstance(data, str) else ("" if data is None else json.dumps(data))
    date = str(event.get("date", ""))[11:23]
    fields = (
        date,
        event.get("room"),
        event.get("channel"),
        event.get("state"),
        event.get("socket"),
    )
    return " ".join(str(f) for f in (*fields, text)).rstrip()


@click.command()
@click.option("-n", "--name", required=True, help="Processor to listen to ('global': every one)")
@click.option("-c", "--channel", help="Channel: task, log, result or error [default: all]")
@click.option("-a", "--adaptor", help="module.Class whose put(event) receives each event")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many events")
@pass_app
def listen(
    app: AppContext, name: str, channel: str | None, adaptor: str | None, count: int | None
) -> None:
    """Print a processor's live events.

    NAME's events as they happen: NDJSON when piped, readable lines on a terminal.
    """
    from shellflow.engine.events import GLOBAL, redis_client
    from shellflow.errors import ServiceUnavailable

    app.authorize("READ_PROCESSOR", name)
    sink = _adaptor(adaptor) if adaptor else None
    pattern = GLOBAL if name == GLOBAL else (f"{name}.{channel}" if channel else f"{name}.*")
    pubsub = redis_client(app.settings.pubsub).pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.psubscribe(pattern)
    except Exception as exc:
        raise ServiceUnavailable("pub/sub", app.settings.pubsub, str(exc)) from exc
    info(f"Listening to {pattern}")
    tty = stdout_is_tty()
    seen = 0
    for raw in pubsub.listen():
        if raw.get("type") != "pmessage":
            continue
        event = json.loads(raw["data"])
        if name == GLOBAL and channel and event.get("channel") != channel:
            continue
        if sink is not None:
            sink.put(event)
        else:
            write_lines([_readable(event) if tty else json.dumps(event, separators=(",", ":"))])
        seen += 1
        if count and seen >= count:
            break
    pubsub.close()
