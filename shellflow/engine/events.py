"""Live events: every stored event is then published on pub/sub for ``flow listen``.

Channels are ``<processor>.<channel>`` and ``global`` (which carries everything), with
channel names ``task`` (lifecycle: received, prerun, postrun, failure, retry, revoked),
``log`` (lines the function printed), ``result`` and ``error``. Each message is one JSON
object with these fields:

=========  ==============================================================
channel    task, log, result or error
state      the event's name (received, prerun, postrun, failure, log, ...)
date       when it happened, ISO 8601 in UTC
room       the processor's name
socket     the socket's name
call       the call's id
flow       the flow run's id
data       the result, the error message or the log line, when there is one
=========  ==============================================================

The same code serves both deployments: in the embedded default the pub/sub URL is the
embedded Redis's unix socket, so no extra server is needed. Publishing never fails a call:
events are stored first, and a pub/sub outage only costs live viewers their messages.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

GLOBAL = "global"
CHANNELS = ("task", "log", "result", "error")
log = logging.getLogger(__name__)


def redis_client(url: str) -> Any:
    """A redis-py client for ``redis://``, ``rediss://`` or a unix-socket URL."""
    import redis

    from shellflow.engine.embedded import socket_path_of

    path = socket_path_of(url)
    if path is not None:
        return redis.Redis(unix_socket_path=str(path), socket_timeout=5)
    return redis.Redis.from_url(url, socket_timeout=5)


def message(channel: str, state: str, room: str, socket: str, call: str, flow: str | None,
            data: Any = None) -> dict[str, Any]:  # fmt: skip
    out = {
        "channel": channel, "state": state, "date": datetime.now(UTC).isoformat(),
        "room": room, "socket": socket, "call": call, "flow": flow,
    }  # fmt: skip
    if data is not None:
        out["data"] = data
    return out


class Publisher:
    """Publishes to ``<room>.<channel>`` and ``global``; silently idle without pub/sub."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: Any = None
        self._broken = False

    def _redis(self) -> Any:
        if self._client is None:
            self._client = redis_client(self.url)
        return self._client

    def publish(self, event: dict[str, Any]) -> None:
        if not self.url.startswith(("redis", "rediss", "unix", "socket")):
            return  # only Redis carries live channels today
        payload = json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=repr)
        try:
            pipe = self._redis().pipeline(transaction=False)
            pipe.publish(f"{event['room']}.{event['channel']}", payload)
            pipe.publish(GLOBAL, payload)
            pipe.execute()
            self._broken = False
        except Exception as exc:  # a live viewer missing a message must never fail a call
            if not self._broken:
                log.warning("live events unavailable at %s: %s", self.url, exc)
            self._broken = True
            self._client = None
