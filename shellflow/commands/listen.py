"""``flow listen``: print a processor's live events as they happen (spec 10.1.6).

**``--since TIME``: stored events, then live ones, with no gap and no duplicate.** Workers
publish an event only after its row is committed (``shellflow.engine.records.events``), and every
message carries its stored event's ``id``. So ``listen --since``

1. subscribes first, and waits for the server's confirmation: from then on every event
   published reaches it;
2. then reads the events stored at or after TIME from the call records (``event`` and
   ``log`` rows, with each call's result and error) and prints them, oldest first. Any
   event published before step 1 was committed before it, so it is among these rows: no
   gap;
3. then prints the live messages, skipping each one whose ``(channel, id)`` was replayed
   in step 2 (an event committed and published between steps 1 and 2 is both stored and
   received live): no duplicate.

TIME is an ISO date or time (UTC when it names no zone) or a duration back from now:
``90s``, ``15m``, ``2h``, ``1d``.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info, stdout_is_tty, write_lines
from shellflow.commands.params import TEXT, parse_since, whole
from shellflow.engine.records.events import CHANNELS
from shellflow.printable import printable
from shellflow.redact import mask_url


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


def _known(app: AppContext, name: str) -> None:
    """NotFound (exit 3, with close names) unless ``name`` is a stored processor."""
    from shellflow.errors import NotFound
    from shellflow.model.listing import names

    with app.reader() as conn:
        known = names(conn, "processor")
    if name not in known:
        raise NotFound("processor", name, known)


def _readable(event: dict[str, Any]) -> str:
    """One event as a line for a person: its control characters written out (printable)."""
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
    return printable(" ".join(str(f) for f in (*fields, text)).rstrip())


@click.command()
@click.option(
    "-n", "--name", required=True, type=TEXT, help="Processor to listen to ('global': every one)"
)
@click.option(
    "-c", "--channel", type=click.Choice(CHANNELS), help="Channel to print [default: all]"
)
@click.option(
    "-a", "--adaptor", type=TEXT, help="module.Class whose put(event) receives each event"
)
@click.option("--count", type=whole(1), help="Stop after this many events")
@click.option(
    "--since",
    metavar="TIME",
    help="First replay the events stored since TIME (ISO time, or 90s, 15m, 2h, 1d ago)",
)
@pass_app
def listen(
    app: AppContext, name: str, channel: str | None, adaptor: str | None, count: int | None,
    since: str | None,
) -> None:  # fmt: skip
    """Print a processor's live events.

    NAME's events as they happen: NDJSON when piped, readable lines on a terminal
    (the metrics channel only with -c metrics). With --since, the events stored since
    then come first, with no gap and no duplicate.
    """
    from shellflow.engine.records.events import (
        GLOBAL,
        carries_live_events,
        channel_pattern,
        decoded,
        message_key,
        redis_client,
        replay_since,
    )
    from shellflow.errors import ServiceUnavailable, UsageError

    start = parse_since(since) if since is not None else None
    app.authorize("LISTEN", name, None if name == GLOBAL else name)  # LISTEN on NAME will do
    sink = _adaptor(adaptor) if adaptor else None
    if name != GLOBAL:
        _known(app, name)  # a mistyped name would otherwise wait, silently, for ever
    if not carries_live_events(app.settings.pubsub):
        raise UsageError(
            f"live channels need a Redis pub/sub URL; {mask_url(app.settings.pubsub)} carries none"
        )
    pattern = channel_pattern(name, channel)
    if name == GLOBAL and channel == "metrics":  # never on global: every processor's own
        pattern = "*.metrics"
    pubsub = redis_client(app.settings.pubsub).pubsub()
    try:
        pubsub.psubscribe(pattern)
        confirmed = pubsub.get_message(timeout=10)  # subscribed from here on
    except Exception as exc:
        raise ServiceUnavailable("pub/sub", app.settings.pubsub, str(exc)) from exc
    if not confirmed or confirmed.get("type") != "psubscribe":
        raise ServiceUnavailable("pub/sub", app.settings.pubsub, "subscription not confirmed")
    info(f"Listening to {name if name == GLOBAL else name + '.' + (channel or '*')}")
    tty = stdout_is_tty()
    printed = 0

    def show(event: dict[str, Any]) -> bool:
        """Print one event; True once --count events were printed."""
        nonlocal printed
        if channel and event.get("channel") != channel:
            return False
        if not channel and event.get("channel") == "metrics":  # only with -c metrics
            return False
        if sink is not None:
            sink.put(event)
        else:
            write_lines([_readable(event) if tty else json.dumps(event, separators=(",", ":"))])
        printed += 1
        return bool(count and printed >= count)

    replayed: set[tuple[str, str]] = set()
    if start is not None:
        for event in replay_since(app.settings.db, start, None if name == GLOBAL else name):
            replayed.add(message_key(event))
            if show(event):
                pubsub.close()
                return
    for raw in pubsub.listen():
        if raw.get("type") != "pmessage":
            continue
        live = decoded(raw["data"])
        if live is None:  # not an event: skipped
            continue
        if replayed:
            key = message_key(live)
            if key in replayed:
                replayed.discard(key)  # stored and published: already printed
                continue
        if show(live):
            break
    pubsub.close()
