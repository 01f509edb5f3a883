"""A subscription to live channels (what ``flow listen`` prints), polled from a worker thread."""

from __future__ import annotations

import json
from typing import Any

from shellflow.errors import ServiceUnavailable


def _parts(channel: str) -> tuple[str, str | None]:
    """``(processor, channel)`` of what a pane listens to; ``channel`` None means all.

    Processor names may hold dots, so only a known channel name (or ``*``) ends a
    ``PROCESSOR.CHANNEL``; ``global`` (or nothing) is every processor's.
    """
    from shellflow.engine.records.events import CHANNELS, GLOBAL

    channel = channel.strip()
    if channel in ("", GLOBAL):
        return GLOBAL, None
    name, _, last = channel.rpartition(".")
    if name and last in CHANNELS:
        return name, last
    if name and last == "*":
        return name, None
    return channel, None


def pattern_of(channel: str) -> str:
    """The Redis pattern for ``global``, ``PROCESSOR`` (every channel of it) or
    ``PROCESSOR.CHANNEL``, the processor's name matched literally."""
    from shellflow.engine.records.events import channel_pattern

    return channel_pattern(*_parts(channel))


def shown_pattern(channel: str) -> str:
    """What a pane listens to, as a person reads it (the name as stored, unescaped)."""
    from shellflow.engine.records.events import GLOBAL

    name, which = _parts(channel)
    return GLOBAL if name == GLOBAL else f"{name}.{which or '*'}"


def processor_of(channel: str) -> str | None:
    """The processor a pane listens to; None for ``global`` (every processor's)."""
    from shellflow.engine.records.events import GLOBAL

    name, _ = _parts(channel)
    return None if name == GLOBAL else name


class Subscription:
    """A pattern subscription; :meth:`poll` waits at most ``timeout`` seconds for one event."""

    def __init__(self, url: str, channel: str) -> None:
        from shellflow.engine.records.events import redis_client

        self.url = url
        self.pattern = pattern_of(channel)
        self.metrics = _parts(channel)[1] == "metrics"  # else skipped: one a second per socket
        self._client = redis_client(url)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            self._pubsub.psubscribe(self.pattern)
        except Exception as exc:
            self.close()
            raise ServiceUnavailable("pub/sub", url, str(exc)) from exc

    def poll(self, timeout: float = 0.5) -> dict[str, Any] | None:
        try:
            raw = self._pubsub.get_message(timeout=timeout)
        except Exception as exc:
            raise ServiceUnavailable("pub/sub", self.url, str(exc)) from exc
        if not raw or raw.get("type") != "pmessage":
            return None
        from shellflow.engine.records.events import decoded

        event = decoded(raw["data"])  # None for a message not one of ours: skipped
        if event is not None and event.get("channel") == "metrics" and not self.metrics:
            return None
        return event

    def close(self) -> None:
        try:
            self._pubsub.close()
            self._client.close()
        except Exception:  # closing a broken connection: nothing left to tell or to free
            pass


def event_line(event: dict[str, Any]) -> str:
    """One readable line per event, like ``flow listen`` on a terminal."""
    data = event.get("data")
    text = data if isinstance(data, str) else ("" if data is None else json.dumps(data))
    fields = (
        str(event.get("date", ""))[11:19],
        event.get("room"),
        event.get("channel"),
        event.get("state"),
        event.get("socket"),
    )
    return " ".join(str(f) for f in (*fields, text) if f is not None).rstrip()
